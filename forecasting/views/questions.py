"""The question page: community and aggregate forecasts, the reader's forecast form, history and
scores, the editor's controls, and the panels other apps add (``panels``); plus forecast submission.

``question_card``, ``forecast_form`` and ``render_question`` are shared with the article page and the
editor's actions, which render the question page again when an action fails.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from forecasting import aggregation, services
from forecasting.charts import step_chart
from forecasting.forms import BinaryForecastForm, MultipleChoiceForecastForm, ResolveForm
from forecasting.models import Prediction, Question, Score
from forecasting.ratelimit import limited_per_ip
from forecasting.templatetags.forecast_format import percent

from .charts import distribution_context
from .panels import question_panels


def validation_messages(error: ValidationError) -> list[str]:
    return [str(m) for m in error.messages]


def visible_questions(request: HttpRequest, queryset):
    """Unpublished questions (drafts, and drafts annulled or un-resolved) are for editors only."""
    return queryset.visible_to(request.user)


def question_card(request: HttpRequest, question: Question) -> dict:
    """What the article page and the question page both show of a question."""
    mine = None
    if request.user.is_authenticated:
        mine = question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id").first()
    community = services.community_forecast(question=question)
    options = list(question.options.all())
    option_rows = []
    if not question.is_binary:
        mine_vector = mine.probability_vector() if mine else None
        for i, option in enumerate(options):
            option_rows.append(
                {
                    "option": option,
                    "community": community.probabilities[i] if community.probabilities else None,
                    "mine": mine_vector[i] if mine_vector else None,
                }
            )
    return {
        "question": question,
        "mine": mine,
        "community": community,
        "option_rows": option_rows,
        "accepts_forecasts": question.accepts_forecasts(),
    }


def forecast_form(question: Question, data=None, *, mine: Prediction | None = None):
    """The forecast form, pre-filled with the reader's latest forecast."""
    initial = {}
    if question.is_binary:
        if mine is not None:
            initial["probability"] = percent(mine.probability, 2)
        return BinaryForecastForm(data, initial=initial)
    if mine is not None:
        for option, value in zip(question.options.all(), mine.probability_vector(), strict=True):
            initial[f"option_{option.pk}"] = percent(value, 2)
    return MultipleChoiceForecastForm(data, question=question, initial=initial)


def render_question(request: HttpRequest, question: Question, *, form=None, status: int = 200) -> HttpResponse:
    card = question_card(request, question)
    history = []
    my_scores = []
    if request.user.is_authenticated:
        history = list(question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id"))
        my_scores = list(Score.objects.filter(question=question, forecaster=request.user))
    resolution = question.resolutions.select_related("option", "resolved_by").filter(retracted_at__isnull=True).first()
    is_editor = request.user.has_perm("forecasting.change_question")
    current = services.aggregates_current(question=question)
    bayes = (
        question.aggregate_snapshots.filter(method=services.BAYES_METHOD)
        .select_related("model_run")
        .order_by("-at", "-id")
        .first()
    )
    aggregates = [
        {"name": name, "description": aggregation.AGGREGATORS[name].description, "snapshot": snapshot}
        for name, snapshot in current.items()
    ]
    score_table = {}
    for score in my_scores:
        score_table.setdefault(score.kind, {"kind": score.kind, "label": score.get_kind_display()})[score.method] = (
            score.value
        )
    context = {
        **card,
        "aggregates": aggregates,
        "bayes": bayes,
        "history_chart": step_chart(
            [(a.at.timestamp(), a.probability_yes) for a in services.aggregate_history(question=question)]
        )
        if question.is_binary
        else None,
        **distribution_context(
            question, float(card["mine"].probability) if card["mine"] and question.is_binary else None
        ),
        "question_panels": question_panels(request, question),
        "score_table": [score_table[k] for k in ("brier", "log", "baseline", "peer") if k in score_table],
        "coverage": my_scores[0].coverage if my_scores else None,
        "article": question.article,
        "form": form or forecast_form(question, mine=card["mine"]),
        "history": history,
        "my_scores": my_scores,
        "resolution": resolution,
        "scored_forecasters": Score.objects.filter(
            question=question, kind=Score.Kind.BRIER, method=Score.Method.SPOT
        ).count(),
        "is_editor": is_editor,
        "resolve_form": ResolveForm(question=question) if is_editor else None,
        "events": question.events.select_related("actor").order_by("-created_at", "-id") if is_editor else [],
    }
    return render(request, "forecasting/question_detail.html", context, status=status)


@require_safe
def question_detail(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(visible_questions(request, Question.objects.select_related("article")), pk=pk)
    return render_question(request, question)


@login_required
@require_POST
@limited_per_ip("forecast")
def forecast_submit(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(visible_questions(request, Question.objects.all()), pk=pk)
    form = forecast_form(question, request.POST)
    if form.is_valid():
        try:
            if question.is_binary:
                services.prediction_create(
                    question=question, forecaster=request.user, probability=form.cleaned_data["probability"]
                )
            else:
                services.prediction_create(
                    question=question,
                    forecaster=request.user,
                    option_probabilities=form.cleaned_data["option_probabilities"],
                )
        except ValidationError as error:
            for message in validation_messages(error):
                form.add_error(None, message)
        else:
            messages.success(request, f"Your forecast on “{question.title}” is saved.")
            next_url = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                next_url = question.get_absolute_url()
            return redirect(next_url)
    return render_question(request, question, form=form, status=400)
