"""Pure helpers for the charts (no Django): a small server-rendered SVG step line (sparklines,
pages without JavaScript), downsampling of long histories for the interactive chart, the
histogram of current forecasts, and the drawings of numeric and date questions' distributions
(densities, CDF, the fan of their history)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from .continuous import density, quantile


def step_chart(points: list[tuple[float, float]], width: int = 560, height: int = 140) -> dict | None:
    """SVG polyline of a probability over time, as steps: each value stands until the next."""
    if len(points) < 2:
        return None
    start, end = points[0][0], points[-1][0]
    span = max(end - start, 1.0)
    coordinates = []
    previous = None
    for t, value in points:
        x = round((t - start) / span * width, 1)
        if previous is not None:
            coordinates.append(f"{x},{round((1 - previous) * height, 1)}")
        coordinates.append(f"{x},{round((1 - value) * height, 1)}")
        previous = value
    return {
        "points": " ".join(coordinates),
        "width": width,
        "height": height,
        "first": dt.datetime.fromtimestamp(start, tz=dt.UTC),
        "last": dt.datetime.fromtimestamp(end, tz=dt.UTC),
    }


def downsample_indices(times: Sequence[float], values: Sequence[float], max_points: int) -> list[int]:
    """Which points of a step series to draw so that at most ``max_points`` keep its shape.

    The time span is cut into ``max_points // 4`` equal buckets; each bucket keeps its first,
    lowest, highest and last point (the M4 rule: a line drawn through them has the same pixels
    as one through every point, at one pixel per bucket). Times must be sorted. The first and the
    last point are always kept, so the series starts and ends where it did.
    """
    n = len(times)
    if len(values) != n:
        raise ValueError("times and values differ in length")
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    if n <= max_points:
        return list(range(n))
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    buckets = max_points // 4
    span = max(t[-1] - t[0], 1e-9)  # all at one instant: a single bucket
    bucket = np.minimum(((t - t[0]) / span * buckets).astype(int), buckets - 1)
    keep: set[int] = set()
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], n]
    for start, end in zip(starts, ends, strict=True):
        segment = v[start:end]
        keep.update((int(start), int(end - 1), int(start + np.argmin(segment)), int(start + np.argmax(segment))))
    return sorted(keep)


def histogram(values: Sequence[float], bins: int = 20) -> list[int]:
    """Counts of probabilities in ``bins`` equal bins over [0, 1]; 1.0 falls in the last bin."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    counts = [0] * bins
    for value in values:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{value} is not a probability")
        counts[min(int(value * bins), bins - 1)] += 1
    return counts


# --- numeric and date questions: distributions on the question's scaled range ----------------------------
#
# A forecast is a 201-point CDF on the unit interval (``forecasting.continuous``): x runs over that interval
# (a log-scaled question's axis is logarithmic, as its grid is), the caller labels the ticks in real units.

DENSITY_PEAK_ROOM = 1.08  # the tallest curve stops just under the top edge


def _number(value: float) -> str:
    """An SVG coordinate: two decimals at most, no trailing zeros ("12.5", "40", "0")."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _clamped_position(position: float | None, *, empty: float) -> float:
    """A unit position drawn inside the range: beyond a bound (±inf) at that bound, ``None`` at ``empty``."""
    if position is None or np.isnan(position):
        return empty
    return float(min(max(position, 0.0), 1.0))


def tail_masses(cdf: Sequence[float]) -> tuple[float, float]:
    """(mass below the range, mass above it) of a CDF."""
    return float(cdf[0]), float(1.0 - cdf[-1])


def interval_positions(cdf: Sequence[float]) -> tuple[float, float, float]:
    """The 10th, 50th and 90th percentiles of a CDF as unit positions (-inf / +inf beyond the range)."""
    low, median, high = np.asarray(quantile(np.asarray(cdf, dtype=float), [0.1, 0.5, 0.9]), dtype=float)
    return float(low), float(median), float(high)


def distribution_chart(
    curves: dict[str, Sequence[float] | None],
    *,
    marker: float | None = None,
    width: int = 560,
    height: int = 160,
) -> dict | None:
    """The in-range densities of several CDFs (``{"community": cdf, "mine": cdf}``) on one vertical scale.

    Each curve gets ``area`` (an SVG path, closed along the bottom edge) and ``line`` (polyline points)
    through the centres of the 200 buckets, held flat to the edges, and its tail masses ``below`` and
    ``above`` the range. ``marker`` is a resolution's unit position: ``x`` inside the range, or
    ``side`` "below" / "above" beyond it. ``None`` when no curve is given.
    """
    given = {name: np.asarray(cdf, dtype=float) for name, cdf in curves.items() if cdf is not None}
    if not given:
        return None
    densities = {name: density(cdf) for name, cdf in given.items()}
    peak = max(float(values.max()) for values in densities.values())
    scale_y = height / (max(peak, 1e-9) * DENSITY_PEAK_ROOM)
    buckets = len(next(iter(densities.values())))
    xs = [0.0, *((np.arange(buckets) + 0.5) / buckets), 1.0]
    drawn = {}
    for name, values in densities.items():
        ys = [values[0], *values, values[-1]]
        points = [f"{_number(x * width)},{_number(height - y * scale_y)}" for x, y in zip(xs, ys, strict=True)]
        below, above = tail_masses(given[name])
        drawn[name] = {
            "line": " ".join(points),
            "area": f"M0,{height} L" + " L".join(points) + f" L{width},{height} Z",
            "below": below,
            "above": above,
        }
    chart = {"width": width, "height": height, "curves": drawn, "marker": None}
    if marker is not None and not np.isnan(marker):
        if marker < 0:
            chart["marker"] = {"side": "below"}
        elif marker > 1:
            chart["marker"] = {"side": "above"}
        else:
            chart["marker"] = {"side": "inside", "x": _number(marker * width)}
    return chart


def tail_bar(mass: float, height: int = 60) -> dict:
    """A bar of a probability mass beyond the range, on a 0-100% scale ``height`` tall: its y and height."""
    mass = min(max(float(mass), 0.0), 1.0)
    bar = mass * height
    return {"y": _number(height - bar), "height": _number(bar), "mass": mass}


def cdf_chart(cdf: Sequence[float], *, width: int = 560, height: int = 120) -> dict:
    """A CDF as a polyline (y: 0% at the bottom, 100% at the top), and the x of its 10th, 50th and 90th
    percentiles (``None`` when beyond the range)."""
    values = np.asarray(cdf, dtype=float)
    xs = np.linspace(0.0, 1.0, len(values))
    points = " ".join(f"{_number(x * width)},{_number((1 - y) * height)}" for x, y in zip(xs, values, strict=True))
    marks = {}
    for name, position in zip(("low", "median", "high"), interval_positions(values), strict=True):
        marks[name] = _number(position * width) if np.isfinite(position) else None
    return {"width": width, "height": height, "points": points, **marks}


def fan_chart(
    times: Sequence[float],
    intervals: Sequence[tuple[float, float, float]],
    *,
    until: float | None = None,
    width: int = 560,
    height: int = 160,
) -> dict | None:
    """A distribution's history as a fan: the 10-90% band (a polygon) and the median (a polyline) over time.

    ``times`` are epoch seconds, sorted; ``intervals`` each time's (10th, 50th, 90th) percentile positions
    on the unit range (beyond it: drawn at its edge); each value holds until the next, the last one until
    ``until`` (default: the last time). y: the range's low end at the bottom. ``None`` for no time span.
    """
    if len(times) != len(intervals):
        raise ValueError("times and intervals differ in length")
    if not times:
        return None
    end = max(until if until is not None else times[-1], times[-1])
    start = times[0]
    if end <= start:
        return None
    span = end - start

    def x(t: float) -> str:
        return _number((t - start) / span * width)

    def y(position: float, empty: float) -> str:
        return _number((1 - _clamped_position(position, empty=empty)) * height)

    edges = [*times[1:], end]
    upper, lower, middle = [], [], []
    for t, t_next, (low, median, high) in zip(times, edges, intervals, strict=True):
        for at in (t, t_next):
            upper.append(f"{x(at)},{y(high, 1.0)}")
            lower.append(f"{x(at)},{y(low, 0.0)}")
            middle.append(f"{x(at)},{y(median, 0.5)}")
    return {
        "width": width,
        "height": height,
        "band": " ".join(upper + lower[::-1]),
        "median": " ".join(middle),
        "first": dt.datetime.fromtimestamp(start, tz=dt.UTC),
        "last": dt.datetime.fromtimestamp(end, tz=dt.UTC),
    }
