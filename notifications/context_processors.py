"""The bell in the site header: the signed-in reader's unread count."""

from __future__ import annotations

from django.http import HttpRequest

from . import services


def unread_notifications(request: HttpRequest) -> dict:
    """``notifications_unread``: a callable, so the one COUNT query runs only on pages that show the bell
    (base.html evaluates it once, in a ``{% with %}``); nothing for anonymous visitors."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"notifications_unread": lambda: services.unread_count(user=user)}
