"""What the question page's chart and distribution show (reads only): the community aggregate's
history, the Bayesian aggregate with its 90% band, the reader's own forecasts, and the spread of
every forecaster's current forecast.

Long histories are downsampled (``forecasting.charts.downsample_indices``) so the chart's data stays
small whatever the number of forecasts; a range (``since``) starts with the value that stood then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from forecasting import charts
from forecasting.models import AggregateState, Prediction, Question

from .aggregates import HEADLINE_METHOD
from .bayesian import BAYES_METHOD
from .latest import LatestForecasts
from .snapshot_history import MethodHistory, method_history

MAX_POINTS = 400  # per series: about one point per 2-3 pixels of a desktop chart
HISTOGRAM_BINS = 20


@dataclass
class Series:
    """One line of the chart: step values over time (epoch seconds), optionally with a band."""

    key: str
    label: str
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    low: list[float | None] | None = None
    high: list[float | None] | None = None

    def as_json(self) -> dict:
        data = {"key": self.key, "label": self.label, "t": self.times, "v": self.values}
        if self.low is not None:
            data["low"], data["high"] = self.low, self.high
        return data


def _epoch(value: dt.datetime) -> float:
    return round(value.timestamp(), 3)


def downsampled(series: Series, max_points: int = MAX_POINTS) -> Series:
    keep = charts.downsample_indices(series.times, series.values, max_points)
    if len(keep) == len(series.times):
        return series
    series.times = [series.times[i] for i in keep]
    series.values = [series.values[i] for i in keep]
    if series.low is not None:
        series.low = [series.low[i] for i in keep]
        series.high = [series.high[i] for i in keep]
    return series


def community_history(*, question: Question, since: dt.datetime | None = None) -> MethodHistory:
    """The headline aggregate's history: read once, drawn by several series."""
    return method_history(question.pk, HEADLINE_METHOD, since=since)


def _rounded(column: np.ndarray, digits: int) -> list[float]:
    """``[round(x, digits) for x in column]``, vectorised: the same floats (numpy's rint differs from
    ``round`` only on near-ties, which are rounded by ``round`` itself)."""
    scale = 10.0**digits
    scaled = column * scale
    values = (np.rint(scaled) / scale).tolist()
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3).tolist():
        values[i] = round(float(column[i]), digits)
    return values


def community_series(
    *,
    question: Question,
    since: dt.datetime | None = None,
    max_points: int = MAX_POINTS,
    history: MethodHistory | None = None,
) -> list[Series]:
    """The headline aggregate: P(YES) for a binary question, one line per option otherwise (from ``history``,
    ``community_history``' answer, when the caller read it already)."""
    history = community_history(question=question, since=since) if history is None else history
    times = _rounded(history.times, 3)
    width = history.values.shape[1]
    if question.is_binary:
        label = "Community"
        return [downsampled(Series("community", label, times, _rounded(history.values[:, -1], 4)), max_points)]
    series = []
    for i, option in enumerate(question.options.all()):
        values = _rounded(history.values[:, i], 4) if i < width else [0.0] * len(times)
        series.append(downsampled(Series(f"community:{i}", option.label, list(times), values), max_points))
    return series


def bayes_series(*, question: Question, since: dt.datetime | None = None) -> Series | None:
    """The Bayesian aggregate of a binary question with its 90% interval; ``None`` before its first value."""
    if not question.is_binary:
        return None
    history = method_history(question.pk, BAYES_METHOD, since=since)
    if not len(history):
        return None
    return downsampled(
        Series(
            "bayes",
            "Bayesian aggregate (90% interval)",
            _rounded(history.times, 3),
            _rounded(history.values[:, -1], 4),
            low=[None if np.isnan(x) else round(x, 4) for x in history.low.tolist()],
            high=[None if np.isnan(x) else round(x, 4) for x in history.high.tolist()],
        )
    )


def own_forecasts(*, question: Question, user: AbstractBaseUser | AnonymousUser) -> Series | None:
    """The reader's own forecasts on a binary question, as points; ``None`` for anonymous readers."""
    if not user.is_authenticated or not question.is_binary:
        return None
    rows = Prediction.objects.filter(question=question, forecaster=user).order_by("made_at", "id")
    points = list(rows.values_list("made_at", "probability"))
    return Series("mine", "Your forecasts", [_epoch(at) for at, _ in points], [float(p) for _, p in points])


@dataclass(frozen=True)
class Distribution:
    """Every forecaster's current forecast: a histogram of P(YES), or per-option mean and spread."""

    forecasters: int
    bins: list[int] | None = None  # binary: counts in HISTOGRAM_BINS equal bins of P(YES)
    options: list[dict] | None = None  # multiple choice: label, mean, quartiles per option

    @property
    def tallest(self) -> int:
        return max(self.bins or [0])


def forecast_distribution(*, question: Question) -> Distribution:
    """The spread of the forecasters' latest forecasts, read from the aggregation state (one row and the
    few forecasts since its checkpoint)."""
    state = AggregateState.objects.filter(question=question).first()
    matrix = LatestForecasts.load(state).probabilities if state is not None else np.empty((0, 2))
    if not len(matrix):
        return Distribution(forecasters=0)
    if question.is_binary:
        return Distribution(forecasters=len(matrix), bins=charts.histogram(matrix[:, -1].tolist(), HISTOGRAM_BINS))
    rows = []
    for i, option in enumerate(question.options.all()[: state.outcomes]):
        column = matrix[:, i]
        q1, median, q3 = np.quantile(column, [0.25, 0.5, 0.75])
        rows.append(
            {
                "label": option.label,
                "mean": float(column.mean()),
                "q1": float(q1),
                "median": float(median),
                "q3": float(q3),
            }
        )
    return Distribution(forecasters=len(matrix), options=rows)


@dataclass(frozen=True)
class HistoryTable:
    """The chart's text alternative: the community aggregate at a few moments of its history."""

    labels: list[str]  # one column per line of the chart
    rows: list[tuple[dt.datetime, list[float | None]]]


def history_table(*, question: Question, max_rows: int = 24, history: MethodHistory | None = None) -> HistoryTable:
    """At most ``max_rows`` moments (first, last, and the turning points between) of the community line
    (``history``: ``community_history``' answer, if read already)."""
    series = community_series(question=question, max_points=max(4, max_rows), history=history)
    times = sorted({t for s in series for t in s.times})
    if len(times) > max_rows:  # several option lines kept different moments: thin them evenly
        step = (len(times) - 1) / (max_rows - 1)
        times = [times[round(i * step)] for i in range(max_rows)]
    rows = []
    for t in times:
        values = []
        for s in series:
            j = int(np.searchsorted(s.times, t, side="right")) - 1
            values.append(s.values[j] if j >= 0 else None)
        rows.append((dt.datetime.fromtimestamp(t, tz=dt.UTC), values))
    return HistoryTable(labels=[s.label for s in series], rows=rows)
