"""Numeric and date questions on the web: what the question page and the article's cards show of a
distribution (the community's median and 80% interval, its density with the reader's own over it, the
mass beyond the range, the outcome once resolved, the history as a fan), and the preview a reader sees
while typing a forecast (``GET /questions/<id>/forecast/preview/``, which writes nothing).

The drawings are computed by the pure ``forecasting.charts`` and drawn as SVG by the templates
(``forecasting/_continuous_*.html``): no JavaScript needed, and htmx swaps the preview in as it changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from forecasting import charts, services
from forecasting.continuous import summary
from forecasting.forms import ContinuousForecastForm
from forecasting.models import AggregateSnapshot, Prediction, Question, Resolution
from forecasting.services.aggregates import headline_method
from forecasting.templatetags.forecast_format import describe_distribution

# What each continuous aggregation method is, for the question page's "Every aggregation method".
METHOD_DESCRIPTIONS = {
    "recency_weighted_mean": "Metaculus's community prediction: the mean of the forecasts' CDFs, newer ones "
    "weighing more (exp(sqrt(i) - sqrt(n))).",
    "linear_pool": "The plain mean of the forecasts' CDFs: the mixture of every forecast.",
    "quantile_average": "The mean of the forecasts' percentiles: keeps the shape forecasters share instead of "
    "widening it.",
    "learnt_pool": "The community prediction: the mean of the forecasts' CDFs, each forecaster weighted by their "
    "accuracy on resolved numeric and date questions, then narrowed or widened by what resolved questions "
    "taught. Until then, the plain mean.",
}
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where the x axis is labelled, on the unit range
FAN_POINTS = 200  # snapshots drawn in the history's fan (downsampled on the median)
FAN_TABLE_ROWS = 12  # the fan's text alternative
TAIL_BAR_HEIGHT = 60
SPARKLINE_POINTS = 48


def axis_labels(question: Question, positions: Sequence[float] = TICKS) -> list[str]:
    """The real values (``format_value``) at unit positions of the question's range; no unit, which the
    figure's key and heading give (five "375 violations" do not fit a phone's axis)."""
    scale = question.scale
    return [question.format_value(float(scale.from_unit(u)), with_unit=False) for u in positions]


def _outcome_position(resolution: Resolution | None) -> float | None:
    if resolution is None or resolution.outcome not in (
        Resolution.Outcome.VALUE,
        Resolution.Outcome.BELOW,
        Resolution.Outcome.ABOVE,
    ):
        return None
    return resolution.outcome_position()


def _tails(question: Question, chart: dict) -> list[dict]:
    """The masses beyond the open ends of the range, one box per open end, each curve a bar (0-100%)."""
    tails = []
    words = {"below": "Before" if question.is_date else "Below", "above": "After" if question.is_date else "Above"}
    for side, is_open, edge in (
        ("below", question.open_lower_bound, question.range_min),
        ("above", question.open_upper_bound, question.range_max),
    ):
        if not is_open:
            continue
        bars = {
            name: charts.tail_bar(curve[side], TAIL_BAR_HEIGHT) | {"percent": round(curve[side] * 100, 1)}
            for name, curve in chart["curves"].items()
        }
        marker = chart["marker"] is not None and chart["marker"]["side"] == side
        label = f"{words[side]} {question.format_value(edge)}"
        tails.append(
            {"side": side, "label": label, "phrase": label[0].lower() + label[1:], "bars": bars, "marker": marker}
        )
    return tails


def distribution_figure(
    question: Question,
    *,
    community: Sequence[float] | None,
    mine: Sequence[float] | None = None,
    resolution: Resolution | None = None,
) -> dict | None:
    """The question page's density chart: the community's, the reader's own over it, the tails, the outcome."""
    chart = charts.distribution_chart({"community": community, "mine": mine}, marker=_outcome_position(resolution))
    if chart is None:
        return None
    return {
        "chart": chart,
        "ticks": axis_labels(question),
        "tails": _tails(question, chart),
        "tail_height": TAIL_BAR_HEIGHT,
        "outcome": resolution.describe() if chart["marker"] else None,
        "community": describe_distribution(question, community),
        "mine": describe_distribution(question, mine),
    }


def fan_figure(
    question: Question, *, resolution: Resolution | None = None, now: dt.datetime | None = None
) -> dict | None:
    """The community distribution's history: its 10-90% band and median over the headline snapshots,
    to now (or the close, or the resolution), with a table of a few moments for screen readers."""
    rows = list(
        AggregateSnapshot.objects.filter(question=question, method=headline_method(question))
        .order_by("at", "id")
        .values_list("at", "probabilities")
    )
    if not rows:
        return None
    now = now or timezone.now()
    end = resolution.resolved_at if resolution is not None else min(now, question.closes_at)
    times = [at.timestamp() for at, _ in rows]
    intervals = [charts.interval_positions(cdf) for _, cdf in rows]
    medians = [float(np.clip(median, -1.0, 2.0)) for _, median, _ in intervals]
    keep = charts.downsample_indices(times, medians, FAN_POINTS)
    chart = charts.fan_chart(
        [times[i] for i in keep], [intervals[i] for i in keep], until=max(end.timestamp(), times[-1])
    )
    if chart is None:
        return None
    step = max(1, -(-len(rows) // FAN_TABLE_ROWS))
    table_rows = [*range(0, len(rows), step)]
    if table_rows[-1] != len(rows) - 1:
        table_rows.append(len(rows) - 1)
    table = [(rows[i][0], describe_distribution(question, rows[i][1])) for i in table_rows]
    return {
        "chart": chart,
        "y_labels": axis_labels(question, (1.0, 0.5, 0.0)),
        "table": table,
    }


def methods_rows(question: Question, current: dict[str, AggregateSnapshot]) -> list[dict]:
    """ "Every aggregation method" of a numeric or date question: each method's median and interval."""
    return [
        {
            "name": name,
            "description": METHOD_DESCRIPTIONS.get(name, ""),
            "snapshot": snapshot,
            "text": (describe_distribution(question, snapshot.probabilities) or {}).get("text", ""),
        }
        for name, snapshot in current.items()
    ]


def page_context(
    question: Question, *, community: services.CommunityForecast, mine: Prediction | None, resolution
) -> dict:
    """What the question page shows of a numeric or date question beyond the card."""
    return {
        "distribution_figure": distribution_figure(
            question, community=community.probabilities, mine=mine.cdf if mine else None, resolution=resolution
        ),
        "fan": fan_figure(question, resolution=resolution),
    }


def card_context(question: Question, community: services.CommunityForecast, mine: Prediction | None) -> dict:
    """A card's words: the community's and the reader's median and 80% interval."""
    return {
        "community_summary": describe_distribution(question, community.probabilities),
        "mine_summary": describe_distribution(question, mine.cdf) if mine is not None else None,
    }


def median_sparkline(rows: list[tuple]) -> list[dict]:
    """A card's sparkline of a distribution's history: its median's place in the range over time."""
    times = [at.timestamp() for at, _ in rows]
    medians = [float(np.clip(charts.interval_positions(cdf)[1], 0.0, 1.0)) for _, cdf in rows]
    keep = charts.downsample_indices(times, medians, SPARKLINE_POINTS)
    chart = charts.step_chart([(times[j], medians[j]) for j in keep], width=120, height=28)
    return [chart | {"index": 0}] if chart is not None else []


PARTS = ("median", "low", "high")
INVERSION_STEPS = 5
SHIFT_NOTICED = 0.005  # of the range: a median or interval end that moves more than this is pointed out


def _unit(question: Question, values: Sequence[float]) -> np.ndarray:
    return np.asarray(question.scale.to_unit(np.asarray(values, dtype=float)), dtype=float)


def _percentiles(question: Question, cdf: Sequence[float]) -> np.ndarray:
    """The median, 10th and 90th percentiles of a CDF as unit positions (order of ``PARTS``)."""
    low, median, high = charts.interval_positions(cdf)
    return np.array([median, low, high])


def inputs_for(question: Question, cdf: Sequence[float]) -> dict[str, float | None]:
    """The median and interval to type to get this forecast back: its own percentiles, corrected.

    Building a forecast moves its percentiles a little where a closed end of the range cuts off the tail
    beyond it (and the curve is renormalised), so typing a stored forecast's percentiles back would move it
    again, a little more at each unchanged update. A few fixed-point steps find the values that rebuild it.
    A percentile beyond an open end (None) is left for the reader to give.
    """
    wanted = summary(cdf, question.scale)
    if any(wanted[part] is None for part in PARTS):
        return wanted
    target = _percentiles(question, cdf)
    guess = target.copy()
    for _ in range(INVERSION_STEPS):
        values = question.scale.from_unit(guess)
        try:
            built = services.cdf_from_components(question=question, components=[dict(zip(PARTS, values, strict=True))])
        except ValidationError:
            break
        error = target - _percentiles(question, built)
        if not np.all(np.isfinite(error)) or np.max(np.abs(error)) < 1e-4:
            break
        step = guess + error
        if not step[1] < step[0] < step[2]:
            break
        guess = step
    return {**wanted, **dict(zip(PARTS, (float(v) for v in question.scale.from_unit(guess)), strict=True))}


def forecast_initial(question: Question, mine: Prediction | None) -> dict:
    """The form pre-filled with the reader's last forecast: the median and 80% interval that make it."""
    if mine is None or mine.cdf is None:
        return {}
    return ContinuousForecastForm.initial_for(question, inputs_for(question, mine.cdf))


def shift_note(question: Question, components: list[dict], cdf: Sequence[float]) -> str:
    """Why the forecast's median or interval is not quite what the reader typed, when it visibly is not."""
    if len(components) != 1:
        return ""
    typed = _unit(question, [components[0][part] for part in PARTS])
    moved = np.abs(np.nan_to_num(_percentiles(question, cdf) - typed, nan=1.0, posinf=1.0, neginf=1.0))
    if np.max(moved) <= SHIFT_NOTICED:
        return ""
    closed = []
    if not question.open_lower_bound:
        closed.append(f"{'before' if question.is_date else 'below'} {question.format_value(question.range_min)}")
    if not question.open_upper_bound:
        closed.append(f"{'after' if question.is_date else 'above'} {question.format_value(question.range_max)}")
    if closed:
        return (
            f"The outcome cannot fall {' or '.join(closed)}: the part of your estimate beyond the range is spread "
            "over the rest, which moves your median and interval a little."
        )
    return "Every part of the range keeps a little probability, which moves your median and interval a little."


@require_safe
def forecast_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """What a forecast would look like, before it is made: the density and the CDF of the median and interval
    (and further estimates) in the query string, over the community's. Writes nothing. Errors in words, 400."""
    question = get_object_or_404(Question.objects.visible_to(request.user), pk=pk)
    if not question.is_continuous:
        raise Http404("Only numeric and date questions have a distribution to preview.")
    form = ContinuousForecastForm(request.GET, question=question)
    errors: list[str] = []
    cdf = None
    if form.is_valid():
        components = form.cleaned_data["components"]
        try:
            cdf = services.cdf_from_components(question=question, components=components)
        except ValidationError as error:
            errors = [message[0].upper() + message[1:] for message in error.messages]
    else:  # each message names its field ("The low end must be below the median (120).")
        errors = [message for messages in form.errors.values() for message in messages]
    context = {"question": question, "errors": errors}
    if cdf is not None:
        community = services.community_forecast(question=question).probabilities
        figure = distribution_figure(question, community=community, mine=cdf)
        context |= {"figure": figure, "cdf": charts.cdf_chart(cdf), "ticks": figure["ticks"]}
        context["shift_note"] = shift_note(question, components, cdf)
    response = render(request, "forecasting/_continuous_preview.html", context, status=400 if errors else 200)
    response["Cache-Control"] = "private, max-age=60"
    return response
