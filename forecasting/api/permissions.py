"""Who may do what: the web's rules (roles are Django groups with permissions, ``forecasting.roles``).

- Anyone, signed in or not, reads the public things: articles, published questions, their
  aggregates and market prices, leaderboards.
- A signed-in reader submits and reads their own forecasts, trades and scores.
- Editors (``forecasting.add_question``, ``open_question``, ``close_question``,
  ``resolve_question``, ``annul_question``; ``change_question`` also shows drafts) manage questions.
- Analysts (``forecasting.view_score``) read every forecaster's scores, anonymised; analysts
  and editors (``forecasting.view_modelrun``) read the Bayesian model's runs.

A permission that fails for a request without credentials gives 401, with credentials 403.
The services check the editor permissions again (``PermissionDenied``: 403).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework.permissions import BasePermission

from forecasting.models import VIEW_UNPUBLISHED, Question

VIEW_DRAFTS = VIEW_UNPUBLISHED


def _describe(perm: str) -> str:
    return perm.split(".")[-1].replace("_", " ")


def has_perm(perm: str) -> type[BasePermission]:
    """A permission class requiring the Django permission ``perm``."""

    class HasPerm(BasePermission):
        message = f"You need the {_describe(perm)} permission."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

    HasPerm.__name__ = HasPerm.__qualname__ = f"Has_{perm.replace('.', '_')}"
    return HasPerm


def visible_questions(user):
    """Unpublished questions only for those who may edit questions (``Question.objects.visible_to``, as on the web)."""
    # a conditional branch's pair rides along (the question API's ``conditional``): no query per question
    return Question.objects.visible_to(user).select_related("article", "conditional_if_yes", "conditional_if_no")


def visible_question_or_404(request, pk: int) -> Question:
    """A question the user may see, or 404."""
    return get_object_or_404(visible_questions(request.user), pk=pk)
