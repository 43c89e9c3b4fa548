"""The bell in the site header: the signed-in reader's unread count."""

from __future__ import annotations

from django.http import HttpRequest


def unread_notifications(request: HttpRequest) -> dict:
    return {}
