"""Conditional pairs on the site: the panel on the question pages of a pair's four questions, and the
editor's page that creates a pair (``services.conditional_create``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from forecasting import services
from forecasting.forms import ConditionalForm
from forecasting.models import Conditional, Question

from .editor import add_service_errors
from .panels import register_question_panel

PANEL_PAIRS = 5  # a condition may head many pairs: the panel lists the newest


def _branch_row(side: str, branch: Question) -> dict:
    community = services.community_forecast(question=branch)
    return {"side": side, "question": branch, "p_yes": community.probability_yes, "forecasters": community.forecasters}


def _pair(conditional: Conditional) -> dict:
    rows = [_branch_row(side, branch) for side, branch in conditional.branches()]
    p_yes, p_no = rows[0]["p_yes"], rows[1]["p_yes"]
    difference = None if p_yes is None or p_no is None else round((p_yes - p_no) * 100)
    magnitude = None if difference is None else abs(difference)
    return {"conditional": conditional, "rows": rows, "difference": difference, "magnitude": magnitude}


def conditional_panel_context(request: HttpRequest, question: Question) -> dict | None:
    """The pairs this question belongs to (as a branch, a condition or an outcome); None when there are none."""
    if not question.is_binary:
        return None
    # The pairs' rows alone first (most questions head none: one light query), then their four questions
    # each, those the reader may see, in one more query (where a join of four questions cost milliseconds
    # to build on every question page).
    conditionals = list(
        Conditional.objects.filter(
            Q(if_yes=question) | Q(if_no=question) | Q(condition=question) | Q(outcome=question)
        )[:PANEL_PAIRS]
    )
    if not conditionals:
        return None
    ids = {pk for c in conditionals for pk in (c.condition_id, c.outcome_id, c.if_yes_id, c.if_no_id)}
    questions = {q.pk: q for q in Question.objects.visible_to(request.user).filter(pk__in=ids)}
    pairs = []
    for conditional in conditionals:
        if conditional.if_yes_id not in questions or conditional.if_no_id not in questions:
            continue
        for name in ("condition", "outcome", "if_yes", "if_no"):
            related = questions.get(getattr(conditional, f"{name}_id"))
            if related is None:  # a condition or outcome the reader cannot see (a draft again): as before
                related = getattr(conditional, name)
            setattr(conditional, name, related)
        pairs.append(_pair(conditional))
    return {"conditional_pairs": pairs} if pairs else None


register_question_panel(
    "conditional", template="forecasting/_conditional_panel.html", context=conditional_panel_context
)


@login_required
@permission_required("forecasting.add_question", raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def editor_conditional_create(request: HttpRequest) -> HttpResponse:
    form = ConditionalForm(request.POST or None, initial={"condition": request.GET.get("condition")})
    if request.method == "POST" and form.is_valid():
        try:
            conditional = services.conditional_create(
                actor=request.user, condition=form.cleaned_data["condition"], outcome=form.cleaned_data["outcome"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "The conditional pair is open for forecasts.")
            return redirect(conditional.if_yes)
    status = 400 if request.method == "POST" else 200
    return render(request, "editor/conditional_form.html", {"form": form}, status=status)
