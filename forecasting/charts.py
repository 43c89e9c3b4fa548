"""Pure helpers for the charts (no Django): a small server-rendered SVG step line (sparklines,
pages without JavaScript), downsampling of long histories for the interactive chart, and the
histogram of current forecasts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np


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
