"""Forecaster profiles: whether a reader's name and track record are public (private by default)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import ForecasterProfile

PRIVATE_LABEL = "Private forecaster"  # how leaderboards list a private reader: no name, no link, no id


def profile_is_public(*, user) -> bool:
    """Whether ``user`` chose a public profile; readers without a profile row are private."""
    if user is None or not getattr(user, "pk", None):
        return False
    return ForecasterProfile.objects.filter(user_id=user.pk, is_public=True).exists()


def may_see_track_record(*, forecaster, viewer) -> bool:
    """A track record is shown to everyone if its owner made it public, else to its owner only."""
    if viewer is not None and viewer.is_authenticated and viewer.pk == forecaster.pk:
        return True
    return profile_is_public(user=forecaster)


@transaction.atomic
def profile_update(*, user, is_public: bool) -> ForecasterProfile:
    """Set whether ``user``'s name and per-question scores appear on the public pages."""
    if user is None or not user.is_authenticated:
        raise ValidationError("Only a signed-in reader has a profile.")
    if not isinstance(is_public, bool):
        raise ValidationError({"is_public": "Choose public or private."})
    profile, _ = ForecasterProfile.objects.select_for_update().get_or_create(user=user)
    if profile.is_public != is_public:
        profile.is_public = is_public
        profile.save(update_fields=["is_public", "updated_at"])
    return profile
