"""The hidden comments, a queue on forecasting's editor desk (its extension point ``register_desk_queue``,
forecasting/views/desk.py): the latest comments editors hid, who hid them, when and why, each with the
discussion's own "unhide" action. Registered when imported (from ``CommentsConfig.ready()``)."""

from __future__ import annotations

from django.http import HttpRequest

from forecasting.views.desk import register_desk_queue

from . import services
from .models import Comment

HIDDEN_SHOWN = 20


def hidden_comments_context(request: HttpRequest) -> dict | None:
    """The latest hidden comments, newest hiding first; ``None`` (no queue) for who may not moderate."""
    if not services.can_moderate(request.user):
        return None
    hidden = Comment.objects.filter(is_hidden=True).select_related("question", "author", "hidden_by")
    hidden = hidden.order_by("-hidden_at", "-id")
    return {"items": list(hidden[:HIDDEN_SHOWN]), "count": hidden.count()}


register_desk_queue(
    "hidden-comments",
    title="Hidden comments",
    context=hidden_comments_context,
    template="comments/_desk_hidden_comments.html",
    order=60,
)
