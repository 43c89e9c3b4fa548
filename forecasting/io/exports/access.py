"""Who may download what, and how forecasters are anonymised in the exports."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

# Who may download what (``user.has_perm``): analysts download aggregates, forecasts (anonymised)
# and scores; identities need an explicit permission that no role holds by default.
ANALYST_PERMISSION = "forecasting.view_score"
IDENTITIES_PERMISSION = "forecasting.view_forecaster_identities"

FORECASTER_KEY_LENGTH = 16  # hex characters of the HMAC-SHA256 kept


def forecaster_salt() -> bytes:
    """The secret salt of the forecasters' pseudonyms: ``EXPORT_FORECASTER_SALT``, else ``SECRET_KEY``."""
    salt = getattr(settings, "EXPORT_FORECASTER_SALT", "") or settings.SECRET_KEY
    return salt.encode() if isinstance(salt, str) else bytes(salt)


def forecaster_key(user_id: int, *, salt: bytes | None = None) -> str:
    """The forecaster's stable pseudonym in exports: HMAC-SHA256 of the user id, 16 hex characters."""
    digest = hmac.new(salt if salt is not None else forecaster_salt(), str(int(user_id)).encode(), hashlib.sha256)
    return digest.hexdigest()[:FORECASTER_KEY_LENGTH]


def may_export(user) -> bool:
    return user.has_perm(ANALYST_PERMISSION)


def may_see_identities(user) -> bool:
    return user.has_perm(IDENTITIES_PERMISSION)
