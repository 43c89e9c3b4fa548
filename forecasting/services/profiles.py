"""Forecaster profiles: whether a reader's name and track record are public (private by default),
and the display name a public reader goes by.

Display names (``ForecasterProfile.display_name``) are what the public pages call a public reader
instead of their username. They are free text, so they are checked for what would mislead other
readers (``display_name_clean``): at most 60 characters once stripped and NFKC-normalised (so that
full-width or ligature look-alikes count as the letters they look like), runs of spaces made one, no
control or invisible formatting characters (which would hide text or reverse its direction), not
another reader's username in any case (impersonation), and no word claiming a role or mimicking the
labels the site itself uses for readers it does not name (``RESERVED_WORDS``). Two readers may share
a display name: the link to the track record (by username) tells them apart.
"""

from __future__ import annotations

import re
import unicodedata

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import ForecasterProfile

PRIVATE_LABEL = "Private forecaster"  # how leaderboards list a private reader: no name, no link, no id
# A deleted account keeps its User row (its forecasts and scores stay in the aggregates) under a
# random username with this prefix; sign-up refuses usernames that start with it.
DELETED_USERNAME_PREFIX = "deleted-"
DELETED_LABEL = "Deleted reader"  # how public pages name a deleted account's forecasts and scores

DISPLAY_NAME_MAX_LENGTH = 60
# Words that claim a role on the site or mimic its own labels, refused as words of a display name in
# any case ("Editor Ann", "THE ADMIN"); within a longer word they are fine ("Editorial Eve").
RESERVED_WORDS = frozenset(
    {
        "admin",
        "administrator",
        "deleted",
        "editor",
        "editors",
        "moderator",
        "moderators",
        "mod",
        "newsroom",
        "official",
        "staff",
        "system",
    }
)
# The site's own labels, refused however they are spaced or punctuated ("private-forecaster").
RESERVED_NAMES = frozenset({"privateforecaster", "privatetrader", "deletedreader", "anonymous"})
# Cc control, Cf formatting (zero-width, bidirectional overrides), Co private use, Cs surrogates,
# Cn unassigned, Zl/Zp line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
_WORD = re.compile(r"\w+")


def profile_is_public(*, user) -> bool:
    """Whether ``user`` chose a public profile; readers without a profile row are private."""
    if user is None or not getattr(user, "pk", None):
        return False
    return ForecasterProfile.objects.filter(user_id=user.pk, is_public=True).exists()


def profile_display_name(*, user) -> str:
    """The display name ``user`` chose ("" when none, or without a profile row)."""
    if user is None or not getattr(user, "pk", None):
        return ""
    return ForecasterProfile.objects.filter(user_id=user.pk).values_list("display_name", flat=True).first() or ""


def may_see_track_record(*, forecaster, viewer) -> bool:
    """A track record is shown to everyone if its owner made it public, else to its owner only."""
    if viewer is not None and viewer.is_authenticated and viewer.pk == forecaster.pk:
        return True
    return profile_is_public(user=forecaster)


def is_deleted_username(username: str) -> bool:
    """Whether ``username`` is that of a deleted account (``accounts.services.account_delete``)."""
    return username.startswith(DELETED_USERNAME_PREFIX)


def public_label(*, username: str, display_name: str = "", shown: bool) -> str:
    """What a public page calls a reader: ``DELETED_LABEL`` for a deleted account, ``PRIVATE_LABEL``
    when the reader may not be named (``shown``: a public profile, or the viewer themselves), else the
    display name, or the username when there is none."""
    if is_deleted_username(username):
        return DELETED_LABEL
    if not shown:
        return PRIVATE_LABEL
    return display_name or username


def display_name_clean(value: str, *, user) -> str:
    """``value`` as a display name for ``user``: normalised, or a ValidationError saying why not.

    "" (no display name: the public pages use the username) is always allowed.
    """
    if not isinstance(value, str):
        raise ValidationError({"display_name": "Give a display name, or leave it empty."})
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in value if ch not in "\t\n\r"):
        raise ValidationError({"display_name": "Use letters, digits, spaces and punctuation only."})
    if any(ch in "\t\n\r" for ch in value.strip()):
        raise ValidationError({"display_name": "Keep the display name on one line."})
    # NFKC: a full-width "ａｄｍｉｎ" or a ligature is stored (and compared) as the letters it shows.
    name = " ".join(unicodedata.normalize("NFKC", value).split())
    if not name:
        return ""
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise ValidationError(
            {"display_name": f"At most {DISPLAY_NAME_MAX_LENGTH} characters (this one has {len(name)})."}
        )
    folded = name.casefold()
    words = set(_WORD.findall(folded))
    squashed = "".join(_WORD.findall(folded)).replace("_", "")
    if words & RESERVED_WORDS or squashed in RESERVED_NAMES or is_deleted_username(folded):
        raise ValidationError(
            {"display_name": "Choose a name that does not suggest a role on the site (editor, admin, staff…)."}
        )
    users = get_user_model().objects.filter(username__iexact=name)
    if user is not None and getattr(user, "pk", None):
        users = users.exclude(pk=user.pk)
    if users.exists():
        raise ValidationError({"display_name": "That is another reader's username: choose a name of your own."})
    return name


@transaction.atomic
def profile_update(*, user, is_public: bool, display_name: str | None = None) -> ForecasterProfile:
    """Set whether ``user``'s name and per-question scores appear on the public pages, and (unless
    ``display_name`` is None) the name they appear under (``display_name_clean``; "" for the username)."""
    if user is None or not user.is_authenticated:
        raise ValidationError("Only a signed-in reader has a profile.")
    if not isinstance(is_public, bool):
        raise ValidationError({"is_public": "Choose public or private."})
    if display_name is not None:
        display_name = display_name_clean(display_name, user=user)
    profile, _ = ForecasterProfile.objects.select_for_update().get_or_create(user=user)
    changed = []
    if profile.is_public != is_public:
        profile.is_public = is_public
        changed.append("is_public")
    if display_name is not None and profile.display_name != display_name:
        profile.display_name = display_name
        changed.append("display_name")
    if changed:
        profile.save(update_fields=[*changed, "updated_at"])
    return profile
