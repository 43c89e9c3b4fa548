"""The discussion under a question: comments, replies and forecast rationales, a full-width section of
forecasting's question page (its panel extension point, ``placement="below"``).

Registered when imported (from ``CommentsConfig.ready()``).
"""

from __future__ import annotations

from django.http import HttpRequest

from forecasting.models import Question
from forecasting.views.panels import register_question_panel

from . import services
from .forms import FAILED_FORM_ATTRIBUTE, CommentForm


def discussion_context(request: HttpRequest, question: Question) -> dict | None:
    """What the discussion shows on this question's page; ``None`` (no section) for a draft."""
    if question.status == Question.Status.DRAFT:
        return None
    discussion = services.discussion(question=question, viewer=request.user, sort=request.GET.get("sort", ""))
    failed = getattr(request, FAILED_FORM_ATTRIBUTE, None)
    return {
        "discussion": discussion,
        "comment_sorts": services.SORTS,
        "accepts_comments": services.accepts_comments(question),
        "comment_form": failed if failed is not None and not failed.data.get("parent") else CommentForm(),
        "reply_form_with_errors": failed if failed is not None and failed.data.get("parent") else None,
    }


register_question_panel(
    "discussion", template="comments/_discussion.html", context=discussion_context, placement="below"
)
