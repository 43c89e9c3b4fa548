"""Readers' accounts: the only writers of accounts (sign-up, e-mail address, deletion).

Deletion anonymises, never deletes: predictions, scores, comments and the market's ledger point at
the ``User`` row (``PROTECT``), and the question aggregates and leaderboards were computed from them.
So the row stays, stripped of everything that identifies the reader (``account_delete``), and the
public pages call it ``DELETED_LABEL``.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from rest_framework.authtoken.models import Token

from forecasting.services.profiles import DELETED_USERNAME_PREFIX, is_deleted_username, profile_update
from notifications.services import notification_data_erase

EMAIL_TAKEN = (
    "An account with this e-mail address already exists. Forgotten your password? Reset it from the log-in page."
)


def email_normalise(email: str) -> str:
    """One spelling per address: stripped and lower-cased (local parts are case-blind in practice,
    and one account per address is checked case-insensitively anyway)."""
    return email.strip().lower()


def email_in_use(email: str, *, exclude=None) -> bool:
    """Whether another account already has ``email`` (in any case)."""
    users = get_user_model().objects.filter(email__iexact=email_normalise(email))
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users.exists()


@transaction.atomic
def account_create(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """A new reader's account. The form has validated the username and password; the e-mail address
    is checked again here, where it is written."""
    email = email_normalise(email)
    if not email:
        raise ValidationError({"email": "Give your e-mail address: it is how you reset a forgotten password."})
    if email_in_use(email):
        raise ValidationError({"email": EMAIL_TAKEN})
    if is_deleted_username(username.casefold()):
        raise ValidationError({"username": "Usernames may not start with “deleted-”."})
    try:
        with transaction.atomic():  # a savepoint: a concurrent sign-up with this address loses cleanly
            return get_user_model().objects.create_user(username=username, email=email, password=password)
    except IntegrityError:
        if email_in_use(email):
            raise ValidationError({"email": EMAIL_TAKEN}) from None
        raise


@transaction.atomic
def account_email_change(*, user, email: str, password: str) -> AbstractBaseUser:
    """Change ``user``'s e-mail address once they confirm with their password; the old address is told."""
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if not user.check_password(password):
        raise ValidationError({"password": "That is not your password."})
    email = email_normalise(email)
    if not email:
        raise ValidationError({"email": "Give your new e-mail address."})
    if email_in_use(email, exclude=user):
        raise ValidationError({"email": EMAIL_TAKEN})
    old = user.email
    if email == old:
        return user
    user.email = email
    try:
        with transaction.atomic():  # the unique index holds the address against a concurrent claim
            user.save(update_fields=["email"])
    except IntegrityError:
        raise ValidationError({"email": EMAIL_TAKEN}) from None
    if old:
        # After commit, and never failing the request: a changed address the reader did not ask for
        # is the sign of a stolen session, so the old address hears of it.
        transaction.on_commit(
            lambda: send_mail(
                "Your e-mail address was changed",
                f"The e-mail address of your account “{user.username}” on Newsroom Forecasts was changed "
                f"to {email}.\n\nIf you did not do this, reset your password at "
                f"{settings.SITE_URL}{reverse('password_reset')} and write to the newsroom.\n",
                None,
                [old],
                fail_silently=True,
            )
        )
    return user


@transaction.atomic
def account_delete(*, user, password: str) -> AbstractBaseUser:
    """Delete ``user``'s account, keeping their forecasts and scores anonymised.

    The row stays (everything the reader made points at it), renamed ``deleted-<random>`` (unrelated
    to the id or the old name, so the old track record URL answers 404 and the new one cannot be
    guessed), with no e-mail address, no names, an unusable password (which also changes the session
    auth hash, so every session of the account ends at its next request), inactive, a private profile
    without a display name, no groups or permissions, no API tokens, and no notifications.
    """
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if not user.is_active or is_deleted_username(user.username):
        raise ValidationError("This account is already deleted.")
    if user.is_superuser or user.is_staff:
        # The admin's own accounts are closed by another administrator, never from the public site.
        raise ValidationError("Staff accounts are closed by an administrator.")
    if not user.check_password(password):
        raise ValidationError({"password": "That is not your password."})
    profile_update(user=user, is_public=False, display_name="")
    notification_data_erase(user=user)
    Token.objects.filter(user=user).delete()
    user.groups.clear()
    user.user_permissions.clear()
    user.username = _deleted_username()
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.set_unusable_password()
    user.is_active = False
    user.save()
    return user


def _deleted_username() -> str:
    User = get_user_model()
    while True:  # 64 random bits: a collision is all but impossible, but a duplicate would fail the save
        username = f"{DELETED_USERNAME_PREFIX}{secrets.token_hex(8)}"
        if not User.objects.filter(username=username).exists():
            return username
