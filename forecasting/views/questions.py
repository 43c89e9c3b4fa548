"""The question page: community and aggregate forecasts, the reader's forecast form, history and
scores, the editor's controls, and the panels other apps add (``panels``); plus forecast submission.

``question_card``, ``forecast_form`` and ``render_question`` are shared with the article page and the
editor's actions, which render the question page again when an action fails.
"""

from __future__ import annotations

import datetime as dt
import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from forecasting import aggregation, services
from forecasting.charts import downsample_indices, step_chart
from forecasting.forms import BinaryForecastForm, ContinuousForecastForm, MultipleChoiceForecastForm, ResolveForm
from forecasting.models import Prediction, Question, Score
from forecasting.ratelimit import limited_per_ip
from forecasting.services import history, snapshot_history
from forecasting.services.aggregates import headline_method
from forecasting.templatetags.forecast_format import percent

from . import continuous
from .charts import distribution_context
from .panels import question_panels


def validation_messages(error: ValidationError) -> list[str]:
    return [str(m) for m in error.messages]


def visible_questions(request: HttpRequest, queryset):
    """Unpublished questions (drafts, and drafts annulled or un-resolved) are for editors only."""
    return queryset.visible_to(request.user)


_UNREAD = object()  # question_card's ``mine`` when the caller has not read it


def question_card(
    request: HttpRequest,
    question: Question,
    *,
    mine: Prediction | object | None = _UNREAD,
    community: services.CommunityForecast | None = None,
) -> dict:
    """What the article page and the question page both show of a question (``mine``: the reader's
    latest forecast, and ``community``: the community forecast, when the caller has read them already)."""
    if mine is _UNREAD:
        mine = None
        if request.user.is_authenticated:
            mine = question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id").first()
    if community is None:
        community = services.community_forecast(question=question)
    card = {
        "question": question,
        "mine": mine,
        "community": community,
        "option_rows": _option_rows(question, community, mine),
        "accepts_forecasts": question.accepts_forecasts(),
    }
    if question.is_continuous:
        card |= continuous.card_context(question, community, mine)
    return card


SPARKLINE_POINTS = 48  # a card's sparkline is ~120 px wide: more points would not show


def _option_rows(question: Question, community: services.CommunityForecast, mine: Prediction | None) -> list[dict]:
    if question.is_binary or question.is_continuous:
        return []
    mine_vector = mine.probability_vector() if mine else None
    return [
        {
            "option": option,
            "community": community.probabilities[i] if community.probabilities else None,
            "mine": mine_vector[i] if mine_vector else None,
        }
        for i, option in enumerate(question.options.all())
    ]


def _sparklines(question: Question, rows: snapshot_history.MethodHistory) -> list[dict]:
    """Small step lines of the community history: P(YES), one line per option, or a distribution's median."""
    times = rows.times.tolist()
    if question.is_continuous:
        moments = [dt.datetime.fromtimestamp(t, tz=dt.UTC) for t in times]
        return continuous.median_sparkline(list(zip(moments, rows.values.tolist(), strict=True)))
    width = rows.values.shape[1]
    outcomes = [width - 1] if question.is_binary else range(width)
    lines = []
    for i in outcomes:
        values = rows.values[:, i].tolist()
        keep = downsample_indices(times, values, SPARKLINE_POINTS)
        chart = step_chart([(times[j], values[j]) for j in keep], width=120, height=28)
        if chart is not None:
            lines.append(chart | {"index": 0 if question.is_binary else i})
    return lines


def days_left(question: Question, now=None) -> int | None:
    """Whole days until the question closes (rounded up: 'closes in 1 day' the day before); None once closed."""
    seconds = (question.closes_at - (now or timezone.now())).total_seconds()
    return math.ceil(seconds / 86400) if seconds > 0 else None


def question_cards(request: HttpRequest, questions: list[Question]) -> list[dict]:
    """The article page's cards of many questions, in a constant number of queries: the options, the
    community history (the live number and the sparkline) and the reader's latest forecasts."""
    prefetch_related_objects(questions, "options")
    ids = [q.pk for q in questions]
    methods = {q.pk: headline_method(q) for q in questions}  # numeric and date questions have their own
    histories = snapshot_history.method_histories((q.pk, methods[q.pk]) for q in questions)  # one query
    mine: dict[int, Prediction] = {}
    if request.user.is_authenticated:
        own = Prediction.objects.filter(forecaster=request.user, question_id__in=ids).order_by("-made_at", "-id")
        for prediction in own:
            mine.setdefault(prediction.question_id, prediction)
    now = timezone.now()
    cards = []
    for question in questions:
        rows = histories[(question.pk, methods[question.pk])]
        method = methods[question.pk]
        community = (
            services.CommunityForecast(
                forecasters=int(rows.forecasters[-1]), probabilities=rows.values[-1].tolist(), method=method
            )
            if len(rows)
            else services.CommunityForecast(forecasters=0, probabilities=None, method=method)
        )
        accepts = question.accepts_forecasts(now)
        card = {
            "question": question,
            "mine": mine.get(question.pk),
            "community": community,
            "option_rows": _option_rows(question, community, mine.get(question.pk)),
            "accepts_forecasts": accepts,
            "sparklines": _sparklines(question, rows) if len(rows) else [],
            "days_left": days_left(question, now),
            # htmx swaps the card itself; without JavaScript the form comes back to it in the article
            "hx_target": f"#q{question.pk}",
            "next": f"{question.article.get_absolute_url()}#q{question.pk}",
        }
        if question.is_continuous:
            card |= continuous.card_context(question, community, card["mine"])
        if accepts:
            card["form"] = forecast_form(question, mine=card["mine"])
        cards.append(card)
    return cards


def forecast_form(question: Question, data=None, *, mine: Prediction | None = None):
    """The forecast form, pre-filled with the reader's latest forecast."""
    initial = {}
    if question.is_binary:
        if mine is not None:
            initial["probability"] = percent(mine.probability, 2)
        return BinaryForecastForm(data, initial=initial)
    if question.is_continuous:
        initial = continuous.forecast_initial(question, mine)
        # ids per question: an article page has one form per question
        return ContinuousForecastForm(data, question=question, initial=initial, auto_id=f"id_%s-{question.pk}")
    if mine is not None:
        for option, value in zip(question.options.all(), mine.probability_vector(), strict=True):
            initial[f"option_{option.pk}"] = percent(value, 2)
    return MultipleChoiceForecastForm(data, question=question, initial=initial)


def fallback_chart(question: Question, community: history.MethodHistory | None = None) -> dict | None:
    """The chart drawn without JavaScript: the community line, downsampled like the JSON's (``community``:
    the community history, if read already)."""
    if not question.is_binary:
        return None
    (line,) = history.community_series(question=question, history=community)
    return step_chart(list(zip(line.times, line.values, strict=True)))


def score_explanation(kind: str, value: float | None, *, continuous: bool = False) -> str:
    """One line a reader understands: what the score means and how theirs compares with a 50% guess (a
    numeric or date question: with a forecast spread evenly over the range)."""
    if value is None:
        return ""
    value = float(value)
    if continuous and kind == "log":
        verdict = "better than" if value > 0 else "no better than" if value == 0 else "worse than"
        return (
            "Log of how likely your forecast made the outcome, against a forecast spread evenly over the range "
            f"(0): higher is better; yours is {verdict} that even spread."
        )
    if kind == "crps":
        return (
            "How far your whole distribution was from the outcome, in parts of the range: 0 is perfect, lower is "
            "better; an even spread over the range scores about 0.08 to 0.33."
        )
    if kind == "brier":
        verdict = "better than" if value < 0.25 else "no better than" if value == 0.25 else "worse than"
        return f"Squared error of your forecast: 0 is perfect, a 50% guess scores 0.25; yours is {verdict} a coin flip."
    if kind == "log":
        verdict = "better than" if value > -0.6931 else "worse than"
        return (
            "Log of the probability you gave what happened: 0 is perfect, a 50% guess scores −0.69; "
            f"yours is {verdict} a coin flip."
        )
    if kind == "baseline":
        return "Points against a uniform guess: " + (
            "you beat chance." if value > 0 else "you did not beat chance." if value < 0 else "level with chance."
        )
    if kind == "peer":
        return "Points against the other forecasters' average (all peers sum to 0): " + (
            "you beat the crowd." if value > 0 else "the crowd beat you." if value < 0 else "level with the crowd."
        )
    return ""


def related_questions(request: HttpRequest, question: Question, limit: int = 5) -> list[dict]:
    """Other questions of the same article the reader may see, with their community number."""
    others = visible_questions(request, question.article.questions.exclude(pk=question.pk)).order_by(
        "status", "closes_at", "id"
    )[:limit]
    items = []
    for other in others:
        community = services.community_forecast(question=other)
        summary = continuous.card_context(other, community, None)["community_summary"] if other.is_continuous else None
        items.append({"question": other, "community": community, "summary": summary})
    return items


def _community_from_current(question: Question, current: dict) -> services.CommunityForecast | None:
    """The community forecast from ``aggregates_current``'s answer: its headline method's snapshot is the
    newest one (None when it has none, e.g. no forecast yet: ``community_forecast`` reads it then)."""
    method = headline_method(question)
    snapshot = current.get(method)
    if snapshot is None:
        return None
    return services.CommunityForecast(
        forecasters=snapshot.forecasters, probabilities=list(snapshot.probabilities), method=method
    )


def render_question(request: HttpRequest, question: Question, *, form=None, status: int = 200) -> HttpResponse:
    my_history = []
    my_scores = []
    if request.user.is_authenticated:
        my_history = list(question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id"))
        my_scores = list(Score.objects.filter(question=question, forecaster=request.user))
    current = services.aggregates_current(question=question)
    # The reader's latest forecast is the first of their history, and the community number the headline
    # method's current snapshot: two queries fewer than reading them again.
    card = question_card(
        request,
        question,
        mine=my_history[0] if my_history else None,
        community=_community_from_current(question, current),
    )
    resolution = question.resolutions.select_related("option", "resolved_by").filter(retracted_at__isnull=True).first()
    is_editor = request.user.has_perm("forecasting.change_question")
    bayes = (
        question.aggregate_snapshots.filter(method=services.BAYES_METHOD)
        .select_related("model_run")
        .defer("model_run__fit", "model_run__diagnostics")  # megabytes at scale; the page shows neither
        .order_by("-at", "-id")
        .first()
    )
    bayes_options = []
    if bayes is not None and not question.is_binary:
        bayes_options = list(zip((o.label for o in question.options.all()), bayes.probabilities, strict=False))
    community = None
    if question.is_continuous:
        aggregates = continuous.methods_rows(question, current)
        chart_context = continuous.page_context(
            question, community=card["community"], mine=card["mine"], resolution=resolution
        )
    else:
        aggregates = [
            {"name": name, "description": aggregation.AGGREGATORS[name].description, "snapshot": snapshot}
            for name, snapshot in current.items()
        ]
        community = history.community_history(question=question)  # one read for the chart and its table
        chart_context = distribution_context(
            question,
            float(card["mine"].probability) if card["mine"] and question.is_binary else None,
            community=community,
        )
    score_table = {}
    for score in my_scores:
        score_table.setdefault(score.kind, {"kind": score.kind, "label": score.get_kind_display()})[score.method] = (
            score.value
        )
    context = {
        **card,
        "aggregates": aggregates,
        "bayes": bayes,
        "bayes_options": bayes_options,
        "history_chart": fallback_chart(question, community),
        **chart_context,
        "question_panels": question_panels(request, question),
        "score_table": [
            {
                **score_table[k],
                "explanation": score_explanation(k, score_table[k].get("spot"), continuous=question.is_continuous),
            }
            for k in ("brier", "log", "baseline", "peer", "crps")
            if k in score_table
        ],
        "related": related_questions(request, question),
        "coverage": my_scores[0].coverage if my_scores else None,
        "article": question.article,
        "form": form or forecast_form(question, mine=card["mine"]),
        "history": my_history,
        "my_scores": my_scores,
        "resolution": resolution,
        "scored_forecasters": Score.objects.filter(
            question=question,
            kind=Score.Kind.LOG if question.is_continuous else Score.Kind.BRIER,
            method=Score.Method.SPOT,
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


def _add_service_errors(form, error: ValidationError) -> None:
    """The service's errors next to the field they are about (the rest above the form)."""
    if hasattr(error, "error_dict"):
        for field, messages_ in error.message_dict.items():
            for message in messages_:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in validation_messages(error):
            form.add_error(None, message)


def _forecast_fragment(request: HttpRequest, question: Question, *, form, saved: bool) -> HttpResponse:
    """The htmx answer: the article's card, or the question page's "Your forecast" panel with the
    community number swapped out of band; 400 when the form has errors (htmx-config swaps it)."""
    status = 200 if saved else 400
    if request.htmx.target == f"q{question.pk}":
        (card,) = question_cards(request, [question])
        if not saved:
            card["form"] = form
        context = {"card": card, "saved": saved}
        return render(request, "forecasting/_question_card.html", context, status=status)
    context = {
        **question_card(request, question),
        "history": list(question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id")),
        "saved": saved,
        "oob": True,
    }
    context["form"] = forecast_form(question, mine=context["mine"]) if saved else form
    if question.is_continuous and saved:  # the density chart, with the reader's new forecast over it, out of band
        context["distribution_figure"] = continuous.distribution_figure(
            question,
            community=context["community"].probabilities,
            mine=context["mine"].cdf,
            resolution=services.active_resolution(question),
        )
    return render(request, "forecasting/_your_forecast.html", context, status=status)


@login_required
@require_POST
@limited_per_ip("forecast")
def forecast_submit(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(visible_questions(request, Question.objects.select_related("article")), pk=pk)
    form = forecast_form(question, request.POST)
    in_place = bool(request.htmx) and request.htmx.target in (f"q{question.pk}", "your-forecast")
    saved = False
    if form.is_valid():
        if question.is_binary:
            values = {"probability": form.cleaned_data["probability"]}
        elif question.is_continuous:
            values = {"components": form.cleaned_data["components"]}
        else:
            values = {"option_probabilities": form.cleaned_data["option_probabilities"]}
        try:
            services.prediction_create(
                question=question, forecaster=request.user, rationale=form.cleaned_data["rationale"], **values
            )
            saved = True
        except ValidationError as error:
            _add_service_errors(form, error)
    if in_place:
        return _forecast_fragment(request, question, form=form, saved=saved)
    if saved:
        messages.success(request, f"Your forecast on “{question.title}” is saved.")
        next_url = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = question.get_absolute_url()
        return redirect(next_url)
    return render_question(request, question, form=form, status=400)
