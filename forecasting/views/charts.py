"""The question chart's data (``/questions/<id>/history.json``) and its extension point.

The page draws the chart with uPlot (``webapp/static/vendor/uplot-*``, ``question_chart.js``) from
this JSON: the community aggregate, the Bayesian aggregate's 90% band, the reader's own forecasts,
the close and resolution times, and the series other apps add (the market's price, registered from
``MarketConfig.ready()`` with ``register_chart_series``: forecasting never imports them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_safe

from forecasting import services
from forecasting.models import Question
from forecasting.services import history

SeriesSource = Callable[[Question, dt.datetime | None], "history.Series | None"]

RANGES = {"1w": dt.timedelta(days=7), "1m": dt.timedelta(days=30), "all": None}

_series: dict[str, SeriesSource] = {}


def register_chart_series(name: str, source: SeriesSource) -> None:
    """Add a line to every question chart: ``source(question, since)`` returns a Series or ``None``."""
    _series[name] = source


def chart_data(question: Question, user, *, range_name: str = "all") -> dict:
    now = timezone.now()
    span = RANGES[range_name]
    since = None if span is None else now - span
    series = history.community_series(question=question, since=since)
    bayes = history.bayes_series(question=question, since=since)
    if bayes is not None:
        series.append(bayes)
    for source in _series.values():
        extra = source(question, since)
        if extra is not None:
            series.append(history.downsampled(extra))
    mine = history.own_forecasts(question=question, user=user)
    resolution = services.active_resolution(question)
    return {
        "question": {
            "id": question.pk,
            "type": question.question_type,
            "opens_at": question.opens_at.timestamp(),
            "closes_at": question.closes_at.timestamp(),
            "resolved_at": resolution.resolved_at.timestamp() if resolution else None,
            "outcome": resolution.describe() if resolution else None,
        },
        "range": range_name,
        "since": since.timestamp() if since else None,
        "now": now.timestamp(),
        "series": [s.as_json() for s in series],
        "mine": mine.as_json() if mine else None,
    }


@require_safe
def question_history(request: HttpRequest, pk: int) -> JsonResponse:
    """The chart's data for one question, as JSON; ``?range=1w|1m|all`` (default all)."""
    question = get_object_or_404(Question.objects.visible_to(request.user), pk=pk)
    range_name = request.GET.get("range", "all")
    if range_name not in RANGES:
        return JsonResponse(
            {"error": {"code": "invalid", "message": "range must be 1w, 1m or all.", "fields": {"range": []}}},
            status=400,
        )
    response = JsonResponse(chart_data(question, request.user, range_name=range_name))
    response["Cache-Control"] = "private, max-age=15"
    return response


def distribution_context(
    question: Question, mine_probability: float | None, *, community: history.MethodHistory | None = None
) -> dict:
    """The distribution panel's context: the histogram's bars (SVG units) or the options' spreads
    (``community``: the community history, if the page read it already)."""
    distribution = history.forecast_distribution(question=question)
    bars = []
    if distribution.bins:
        width = 100 // len(distribution.bins)
        tallest = max(distribution.tallest, 1)
        mine_bin = None
        if mine_probability is not None:
            mine_bin = min(int(mine_probability * len(distribution.bins)), len(distribution.bins) - 1)
        for i, count in enumerate(distribution.bins):
            height = round(56 * count / tallest, 2)
            bars.append(
                {
                    "x": i * 10 + 0.5,
                    "y": round(58 - height, 2),
                    "height": height,
                    "count": count,
                    "low": i * width,
                    "high": (i + 1) * width,
                    "mine": i == mine_bin,
                }
            )
    for row in distribution.options or []:
        row["width"] = round((row["q3"] - row["q1"]) * 100, 2)
    return {
        "distribution": distribution,
        "distribution_bars": bars,
        "history_table": history.history_table(question=question, history=community),
    }
