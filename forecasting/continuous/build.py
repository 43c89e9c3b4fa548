"""CDFs from what readers enter: a median and an 80% interval (up to three of them, weighted), or quantiles.

Conventions:

- Readers give real values (the question's units; epoch seconds for dates); the ``Scale`` maps them
  to unit positions and every shape is built there, so a log-scaled question gets log-shaped tails.
- A component ``(median, low, high, weight)`` is a two-piece (split) logistic: its median is the
  reader's median, and its 10th and 90th percentiles are exactly ``low`` and ``high`` (scales
  ``(median - low) / ln 9`` on the left and ``(high - median) / ln 9`` on the right, since the logistic
  CDF at ``±ln 9`` scales is 0.1 / 0.9). Metaculus's sliders use an asymmetric logistic as well
  (front_end/src/utils/math.ts ``cdfFromSliders``), with another parametrisation. A side narrower than
  the grid can show (scale under ``MIN_LOGISTIC_SCALE``, Metaculus's slider minimum: about 1.4% of the
  range between the median and the 10th or 90th percentile) is widened to it.
- A closed bound removes the mass beyond it and renormalises (as ``cdfFromSliders`` does); then
  ``standardise`` makes the CDF pass ``validate_cdf``.

``standardise`` follows Metaculus's ``standardize_cdf`` (docs/openapi.yml; front_end/src/utils/forecasts/
dataset.ts): Metaculus mixes every forecast with a fixed reference forecast U, weight 1% (1.1% with one
open bound, 1.2% with two), where U spreads 0.1% beyond each open bound and the rest uniformly over the
range; then it caps steps at 0.2 and hands the excess to the other buckets in proportion. Here the
weight is the *smallest* one that makes the forecast valid (0 for a valid forecast, at most
Metaculus's), so a valid forecast comes back unchanged and standardising twice changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from .grid import BUCKETS, CDF_POINTS, MAX_STEP, MIN_STEP, MIN_TAIL_MASS, CdfError, Scale, as_cdf_array

MAX_COMPONENTS = 3
LN9 = math.log(9.0)  # logistic CDF: expit(-ln 9) = 0.1, expit(ln 9) = 0.9
# Metaculus's sliders never go below a logistic scale of 0.007 / ln 3 (front_end/src/utils/math.ts): the peak
# density 1 / (4 s) then puts under 20% (MAX_STEP) in one bucket, so the cap never has to flatten a forecast.
MIN_LOGISTIC_SCALE = 0.007 / math.log(3.0)
MIN_KEPT_MASS = 1e-6  # inside closed bounds: below this the reader's inputs are outside the range altogether
UNIT_GRID = np.linspace(0.0, 1.0, CDF_POINTS)


def split_logistic_cdf(u: ArrayLike, median: float, low: float, high: float) -> np.ndarray:
    """CDF at unit positions ``u`` of the two-piece logistic with 10th/50th/90th percentiles low/median/high."""
    x = np.asarray(u, dtype=float) - median
    scale = np.where(x < 0, (median - low) / LN9, (high - median) / LN9)
    return expit(x / scale)


def _beyond_zero_point(scale: Scale) -> CdfError:
    side = "above" if scale.zero_point < scale.range_min else "below"
    return CdfError(f"on this logarithmic scale every value must lie {side} the zero point {scale.zero_point}")


def _unit_triplet(scale: Scale, median: float, low: float, high: float) -> tuple[float, float, float]:
    values = (median, low, high)
    if not all(math.isfinite(v) for v in values):
        raise CdfError("the median and the interval must be finite numbers")
    if not low < median < high:
        raise CdfError("the interval must contain the median: low < median < high")
    m, lo, hi = (float(scale.to_unit(v)) for v in values)
    if not all(math.isfinite(v) for v in (m, lo, hi)):
        raise _beyond_zero_point(scale)
    # widen a side the grid cannot show (see MIN_LOGISTIC_SCALE); also when distinct values of a huge range
    # round to one position
    return m, min(lo, m - LN9 * MIN_LOGISTIC_SCALE), max(hi, m + LN9 * MIN_LOGISTIC_SCALE)


def cdf_from_components(components: Sequence[tuple[float, float, float, float]], scale: Scale) -> np.ndarray:
    """A valid CDF from up to three weighted (median, low, high, weight) components; low/high: 10th/90th percentiles."""
    if not 1 <= len(components) <= MAX_COMPONENTS:
        raise CdfError(f"a forecast has 1 to {MAX_COMPONENTS} components, got {len(components)}")
    if any(len(c) != 4 for c in components):
        raise CdfError("each component is (median, low, high, weight)")
    weights = np.array([float(c[3]) for c in components])
    if not np.all(np.isfinite(weights) & (weights > 0)):
        raise CdfError("component weights must be positive numbers")
    weights /= weights.sum()
    mixture = np.zeros(CDF_POINTS)
    for i, (median, low, high, _) in enumerate(components):
        mixture += weights[i] * _component_cdf(scale, median, low, high)
    return standardise(mixture, scale)


def _component_cdf(scale: Scale, median: float, low: float, high: float) -> np.ndarray:
    return split_logistic_cdf(UNIT_GRID, *_unit_triplet(scale, float(median), float(low), float(high)))


def cdf_from_median_interval(median: float, low: float, high: float, scale: Scale) -> np.ndarray:
    """A valid CDF with this median and 80% interval (low = 10th percentile, high = 90th)."""
    return standardise(_component_cdf(scale, median, low, high), scale)


def cdf_from_quantiles(points: Sequence[tuple[float, float]], scale: Scale) -> np.ndarray:
    """A valid CDF through (probability, value) points: linear between them, exponential tails beyond.

    Each tail keeps the probability beyond the outermost point (``p_1`` below, ``1 - p_n`` above) and
    continues the outermost segment's slope ``s``: ``p_1 exp(s (u - u_1) / p_1)`` below ``u_1``.
    """
    if len(points) < 2 or any(len(point) != 2 for point in points):
        raise CdfError("give at least two (probability, value) quantiles")
    probabilities = np.array([float(p) for p, _ in points])
    values = np.array([float(v) for _, v in points])
    if not (np.all(np.isfinite(probabilities)) and np.all(np.isfinite(values))):
        raise CdfError("quantiles must be finite numbers")
    if np.any((probabilities <= 0) | (probabilities >= 1)):
        raise CdfError("quantile probabilities must lie strictly between 0 and 1")
    if np.any(np.diff(probabilities) <= 0) or np.any(np.diff(values) <= 0):
        raise CdfError("quantiles must be strictly increasing in both probability and value")
    u = np.asarray(scale.to_unit(values))
    if not np.all(np.isfinite(u)):
        raise _beyond_zero_point(scale)
    if np.any(np.diff(u) <= 0):
        raise CdfError("the quantiles are too close together for the question's range")
    p_first, p_last = probabilities[0], probabilities[-1]
    slope_first = (probabilities[1] - p_first) / (u[1] - u[0])
    slope_last = (p_last - probabilities[-2]) / (u[-1] - u[-2])
    x = UNIT_GRID
    cdf = np.interp(x, u, probabilities)
    below, above = x < u[0], x > u[-1]
    cdf[below] = p_first * np.exp(slope_first * (x[below] - u[0]) / p_first)
    cdf[above] = 1.0 - (1.0 - p_last) * np.exp(-slope_last * (x[above] - u[-1]) / (1.0 - p_last))
    return standardise(cdf, scale)


# --- standardisation --------------------------------------------------------------------------------


def _apply_closed_bounds(cdf: np.ndarray, scale: Scale) -> np.ndarray:
    """Drop the mass beyond closed bounds and renormalise the rest (Metaculus's ``scale_lower_to`` / ``_upper_to``)."""
    lower = 0.0 if scale.open_lower else cdf[0]
    upper = 1.0 if scale.open_upper else cdf[-1]
    if upper - lower < MIN_KEPT_MASS:
        raise CdfError("the forecast puts almost no probability inside the range, and its bounds are closed")
    result = (cdf - lower) / (upper - lower)
    if not scale.open_lower:
        result[0] = 0.0
    if not scale.open_upper:
        result[-1] = 1.0
    return result


def reference_cdf(scale: Scale) -> np.ndarray:
    """Metaculus's standardisation component U: 0.1% beyond each open bound, 1% spread over the range, renormalised."""
    below = MIN_TAIL_MASS if scale.open_lower else 0.0
    above = MIN_TAIL_MASS if scale.open_upper else 0.0
    inside = MIN_STEP * BUCKETS
    return (below + inside * UNIT_GRID) / (below + inside + above)


def _mixing_weight(cdf: np.ndarray, scale: Scale, reference: np.ndarray) -> float:
    """The smallest weight w such that ``(1 - w) cdf + w reference`` meets the minimum step and tail masses.

    Each requirement ``(1 - w) a + w b >= t`` with ``a < t <= b`` needs ``w >= (t - a) / (b - a)``; the
    reference meets every requirement exactly (its weight in Metaculus's standardisation), so w stays below it.
    """
    steps, reference_steps = np.diff(cdf), np.diff(reference)
    short = steps < MIN_STEP
    weight = float(np.max((MIN_STEP - steps[short]) / (reference_steps[short] - steps[short]), initial=0.0))
    if scale.open_lower and cdf[0] < MIN_TAIL_MASS:
        weight = max(weight, (MIN_TAIL_MASS - cdf[0]) / (reference[0] - cdf[0]))
    top, reference_top = 1.0 - cdf[-1], 1.0 - reference[-1]
    if scale.open_upper and top < MIN_TAIL_MASS:
        weight = max(weight, (MIN_TAIL_MASS - top) / (reference_top - top))
    return weight


def _cap_steps(cdf: np.ndarray) -> np.ndarray:
    """Cap in-range steps at MAX_STEP, scaling the others up by one factor so the in-range mass is unchanged.

    The factor s solves ``sum(min(cap, s p)) = sum(p)`` exactly: capping the j largest steps leaves
    ``s = (mass - j cap) / (sum of the others)``; take the first j for which the next step stays under
    (j = 0 and s = 1 when no step is over the cap).
    """
    steps = np.diff(cdf)
    mass = cdf[-1] - cdf[0]
    descending = np.sort(steps)[::-1]
    rest = np.cumsum(descending[::-1])[::-1]  # rest[j] = sum of descending[j:]
    for j in range(BUCKETS):
        factor = (mass - j * MAX_STEP) / rest[j]
        if factor * descending[j] <= MAX_STEP:
            break
    capped = np.minimum(MAX_STEP, factor * steps)
    result = cdf[0] + np.concatenate([[0.0], np.cumsum(capped)])
    result[-1] = cdf[-1]
    return result


def standardise(cdf: ArrayLike, scale: Scale) -> np.ndarray:
    """The nearest valid CDF in Metaculus's sense: closed bounds applied, a minimal uniform mix, steps capped.

    Input: 201 finite values (clipped to [0, 1] and made non-decreasing first). Output: rounded to 10
    decimals like Metaculus's, and always accepted by ``validate_cdf``.
    """
    values = _apply_closed_bounds(np.maximum.accumulate(np.clip(as_cdf_array(cdf), 0.0, 1.0)), scale)
    reference = reference_cdf(scale)
    weight = _mixing_weight(values, scale, reference)
    values = _cap_steps((1.0 - weight) * values + weight * reference)
    values = np.round(values, 10)
    if not scale.open_lower:
        values[0] = 0.0
    if not scale.open_upper:
        values[-1] = 1.0
    return values
