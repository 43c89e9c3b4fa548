"""Reliability (calibration) of probabilistic forecasts: bins, Wilson intervals, plot geometry.

Pure: no Django, no database. A forecast is a probability ``p`` in [0, 1] that an event happens
and an outcome is 1 when it did. Bins have equal width over [0, 1]; a probability on an inner edge
(0.3 with ten bins) belongs to the bin above it, and 1.0 to the last bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_BINS = 10
WILSON_Z = 1.959964  # 95% two-sided
_EDGE_DIGITS = 9  # p * bins is rounded to this many digits so that 0.3 * 10 lands in bin 3, not 2


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    happened: int
    mean_forecast: float | None  # None when the bin is empty
    observed_frequency: float | None
    interval_low: float | None  # Wilson interval of the observed frequency
    interval_high: float | None


def wilson_interval(successes: int, n: int, *, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; ``(0, 1)`` when ``n`` is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    phat = successes / n
    denominator = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denominator
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denominator
    # At phat = 0 the lower end is exactly 0 and at phat = 1 the upper end exactly 1; float noise
    # would otherwise put the interval just short of the observed frequency.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bin_index(p: float, bins: int = DEFAULT_BINS) -> int:
    """The bin of probability ``p``: ``floor(p * bins)``, with 1.0 in the last bin."""
    return min(math.floor(round(p * bins, _EDGE_DIGITS)), bins - 1)


def _validate(probabilities: Sequence[float], outcomes: Sequence[int], bins: int) -> None:
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if len(probabilities) != len(outcomes):
        raise ValueError(f"{len(probabilities)} probabilities but {len(outcomes)} outcomes")
    for p in probabilities:
        if not (isinstance(p, int | float) and math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"probabilities must be finite numbers in [0, 1], got {p!r}")
    for o in outcomes:
        if o not in (0, 1):
            raise ValueError(f"outcomes must be 0 or 1, got {o!r}")


def reliability_bins(
    probabilities: Sequence[float], outcomes: Sequence[int], *, bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """Every bin (empty ones included, so tables line up): count, mean forecast, observed frequency."""
    _validate(probabilities, outcomes, bins)
    counts = [0] * bins
    happened = [0] * bins
    sums = [0.0] * bins
    for p, o in zip(probabilities, outcomes, strict=True):
        b = bin_index(float(p), bins)
        counts[b] += 1
        happened[b] += int(o)
        sums[b] += float(p)
    result = []
    for b in range(bins):
        n = counts[b]
        low, high = wilson_interval(happened[b], n) if n else (None, None)
        result.append(
            ReliabilityBin(
                low=b / bins,
                high=(b + 1) / bins,
                count=n,
                happened=happened[b],
                mean_forecast=sums[b] / n if n else None,
                observed_frequency=happened[b] / n if n else None,
                interval_low=low,
                interval_high=high,
            )
        )
    return result


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float | None:
    """Σ_b (n_b / N) |mean forecast_b − observed frequency_b|; None when there are no forecasts."""
    total = sum(b.count for b in table)
    if total == 0:
        return None
    return sum(b.count * abs(b.mean_forecast - b.observed_frequency) for b in table if b.count) / total


# --- the reliability diagram, drawn server-side as SVG -------------------------------------------


@dataclass(frozen=True)
class PlotPoint:
    bin: ReliabilityBin
    x: float  # the mean forecast
    y: float  # the observed frequency
    y_low: float  # the Wilson interval's ends
    y_high: float
    radius: float


@dataclass(frozen=True)
class PlotBar:
    bin: ReliabilityBin
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ReliabilityPlot:
    size: int
    count_height: int
    points: list[PlotPoint]
    bars: list[PlotBar]
    ticks: list[tuple[float, float, int]]  # (x, y, percent): where a tick sits on each axis


def reliability_plot(
    table: Sequence[ReliabilityBin], *, size: int = 240, count_height: int = 40
) -> ReliabilityPlot | None:
    """Coordinates of a reliability diagram in a ``size`` x ``size`` square (y grows downwards).

    A point per non-empty bin at (mean forecast, observed frequency), its area growing with the
    bin's count, with its Wilson interval; under the square, a strip of ``count_height`` with a bar
    per bin whose height is the bin's share of the largest count. None when there are no forecasts.
    """
    largest = max((b.count for b in table), default=0)
    if largest == 0:
        return None

    def scale(v: float) -> float:
        return round(v * size, 1)

    points = [
        PlotPoint(
            bin=b,
            x=scale(b.mean_forecast),
            y=scale(1 - b.observed_frequency),
            y_low=scale(1 - b.interval_low),
            y_high=scale(1 - b.interval_high),
            radius=round(2 + 4 * math.sqrt(b.count / largest), 1),
        )
        for b in table
        if b.count
    ]
    bars = []
    for b in table:
        height = round(count_height * b.count / largest, 1)
        bars.append(
            PlotBar(
                bin=b,
                x=scale(b.low),
                y=round(size + count_height - height, 1),
                width=round(scale(b.high) - scale(b.low) - 1, 1),
                height=height,
            )
        )
    ticks = [(scale(t / 4), scale(1 - t / 4), 25 * t) for t in range(5)]
    return ReliabilityPlot(size=size, count_height=count_height, points=points, bars=bars, ticks=ticks)
