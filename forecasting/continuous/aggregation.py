"""Community aggregates of continuous forecasts. Pure numpy: no Django import.

Every method takes ``cdfs``, an ``(n, 201)`` array with one row per forecaster (their latest CDF on the
question's grid, see grid.py) ordered from the oldest forecast to the newest, and returns one CDF.

- ``linear_pool``: the (weighted) mean of the CDFs, i.e. the mixture of the forecasts. Metaculus's
  community prediction for continuous questions is this mean with recency weights
  (utils/the_math/aggregations.py: ``MedianAggregatorMixin`` averages CDFs for continuous questions,
  ``RecencyWeighted`` gives the weights): ``recency_weighted_mean``. A mean of valid CDFs is valid.
- ``quantile_average``: the mean of the quantile functions (Vincentisation), which keeps the shared
  shape of similar forecasts instead of widening it; passed through ``standardise`` to be valid.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .build import UNIT_GRID, standardise
from .grid import BUCKETS, CDF_POINTS, Scale, as_cdf_matrix, quantile

BISECTION_STEPS = 60  # halvings of [0, 1]: below float resolution


def _as_cdfs(cdfs: ArrayLike) -> np.ndarray:
    values = as_cdf_matrix(cdfs)
    if len(values) == 0:
        raise ValueError("an aggregate needs at least one forecast")
    return values


def _normalised_weights(weights: ArrayLike | None, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be n non-negative numbers, not all zero")
    return w / w.sum()


def linear_pool(cdfs: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """The weighted mean of the CDFs (equal weights by default)."""
    values = _as_cdfs(cdfs)
    return _normalised_weights(weights, len(values)) @ values


def recency_weights(n: int) -> np.ndarray:
    """Metaculus's community-prediction weights: exp(sqrt(i) - sqrt(n)) for i = 1..n, oldest first; equal for n <= 2."""
    if n <= 2:
        return np.ones(n)
    i = np.arange(1, n + 1)
    return np.exp(np.sqrt(i) - np.sqrt(n))


def recency_weighted_mean(cdfs: ArrayLike) -> np.ndarray:
    """Metaculus's community prediction for continuous questions: the recency-weighted mean (rows oldest first)."""
    values = _as_cdfs(cdfs)
    return linear_pool(values, recency_weights(len(values)))


def _mean_quantile(shapes: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``sum_i w_i Q_i(t)`` at each level t in (0, 1), Q_i the inverse of the in-range shape of forecast i.

    ``grid.quantile`` for every row at once: each shape rises from exactly 0 to exactly 1, so every
    level in (0, 1) crosses it between two grid points (the bisection never asks for 0 or 1); the same
    arithmetic, vectorised over the rows (a forecast's aggregate update runs this 60 times).
    """
    k = np.empty((len(shapes), len(levels)), dtype=np.intp)
    for i, shape in enumerate(shapes):  # the first grid point with shape >= level
        k[i] = np.searchsorted(shape, levels)
    rows = np.arange(len(shapes))[:, None]
    below, above = shapes[rows, k - 1], shapes[rows, k]
    positions = (k - 1 + (levels - below) / (above - below)) / BUCKETS
    return weights @ positions


def quantile_average(cdfs: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """The mean of the forecasts' quantile functions, as a valid CDF (equal weights by default).

    The masses below and above the range are averaged; inside it, each forecast's shape (its CDF
    rescaled to run from 0 to 1 over the range) is inverted, the inverses are averaged, and the
    average is inverted back at the 201 grid points by bisection (O(60 n) quantile evaluations).
    The bounds of the result are those the forecasts share: closed where every forecast puts no mass
    beyond them.
    """
    values = np.maximum.accumulate(np.clip(_as_cdfs(cdfs), 0.0, 1.0), axis=1)
    w = _normalised_weights(weights, len(values))
    inside = values[:, -1] - values[:, 0]
    if np.any(inside <= 0):
        raise ValueError("every forecast must put some probability inside the range")
    shapes = (values - values[:, :1]) / inside[:, None]
    low, high = np.zeros(CDF_POINTS), np.ones(CDF_POINTS)
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        short = _mean_quantile(shapes, w, middle) < UNIT_GRID
        low, high = np.where(short, middle, low), np.where(short, high, middle)
    shape = np.maximum.accumulate((low + high) / 2)
    shape[0], shape[-1] = 0.0, 1.0
    below, top = float(w @ values[:, 0]), float(w @ values[:, -1])
    bounds = Scale(0.0, 1.0, open_lower=below > 0, open_upper=top < 1)
    return standardise(below + (top - below) * shape, bounds)


def summary(cdf: ArrayLike, scale: Scale) -> dict[str, float | None]:
    """The median and 80% interval in real units (None when the percentile lies beyond a bound) and the tail masses."""
    values = np.asarray(cdf, dtype=float)
    positions = quantile(values, [0.5, 0.1, 0.9])

    def real(position: float) -> float | None:
        return float(scale.from_unit(position)) if np.isfinite(position) else None

    median, low, high = (real(p) for p in positions)
    return {
        "median": median,
        "low": low,
        "high": high,
        "below": float(values[0]),
        "above": float(1.0 - values[-1]),
    }
