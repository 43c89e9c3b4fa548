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
from .grid import BUCKETS, Scale, as_cdf_matrix, quantile


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


def _inverse_mean_quantile(shapes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """At each grid position u, the level t where ``M(t) = sum_i w_i Q_i(t)`` reaches u (the least t with
    ``M(t) >= u``), Q_i the inverse of forecast i's in-range shape (rising from exactly 0 to exactly 1).

    Exact, in one sort: Q_i is a sum over the shape's 200 buckets of 1/200 times a ramp from the
    bucket's low to its high value (``grid.quantile``'s interpolation), or, where the shape is flat at v,
    a step just above v. So M is piecewise linear between the sorted ramp ends and steps, its slope the
    running sum of the ramps' slopes, and its inverse is read off by linear interpolation (flat across a
    step). O(200 n log n), where a bisection of M costs 60 searches per forecast.
    """
    share = (weights / BUCKETS)[:, None]
    width = np.diff(shapes, axis=1)
    rising = width > 0
    slopes = np.where(rising, share / np.where(rising, width, 1.0), 0.0)  # M's slope from each bucket
    # events at each grid value of each shape: the slope changes (to the next bucket's from the last's)
    # and, where the bucket starting there is flat, a step of its share just above it
    padded = np.pad(slopes, ((0, 0), (1, 1)))
    slope_change = np.diff(padded, axis=1).ravel()
    step = np.pad(np.where(rising, 0.0, share), ((0, 0), (0, 1))).ravel()
    order = np.argsort(shapes, axis=None)
    levels, slope_change, step = shapes.ravel()[order], slope_change[order], step[order]
    # one point per distinct level: M just below it (continuous part and the steps below) and just above
    first = np.flatnonzero(np.r_[True, levels[1:] != levels[:-1]])
    distinct = levels[first]
    slope_after = np.cumsum(slope_change)[np.r_[first[1:], len(levels)] - 1]
    steps_through = np.cumsum(step)[np.r_[first[1:], len(levels)] - 1]
    ramped = np.r_[0.0, np.cumsum(slope_after[:-1] * np.diff(distinct))]
    steps_below = np.r_[0.0, steps_through[:-1]]
    at = ramped + steps_below
    above = ramped + steps_through
    return np.interp(UNIT_GRID, np.ravel([at, above], order="F"), np.repeat(distinct, 2))


def quantile_average(cdfs: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """The mean of the forecasts' quantile functions, as a valid CDF (equal weights by default).

    The masses below and above the range are averaged; inside it, each forecast's shape (its CDF
    rescaled to run from 0 to 1 over the range) is inverted, the inverses are averaged, and the
    average is inverted back at the 201 grid points (``_inverse_mean_quantile``: exact, one sort).
    The bounds of the result are those the forecasts share: closed where every forecast puts no mass
    beyond them.
    """
    values = np.maximum.accumulate(np.clip(_as_cdfs(cdfs), 0.0, 1.0), axis=1)
    w = _normalised_weights(weights, len(values))
    inside = values[:, -1] - values[:, 0]
    if np.any(inside <= 0):
        raise ValueError("every forecast must put some probability inside the range")
    shapes = (values - values[:, :1]) / inside[:, None]
    shape = np.maximum.accumulate(_inverse_mean_quantile(shapes, w))
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
