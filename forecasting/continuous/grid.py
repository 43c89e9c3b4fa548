"""The grid of a continuous (numeric or date) question and the CDFs forecast on it. Pure numpy: no Django.

Conventions (Metaculus's, so that forecasts move both ways unchanged):

- A question's range ``[range_min, range_max]`` is mapped to the *unit* interval ``[0, 1]``, linearly
  or, when ``zero_point`` is set, logarithmically (Metaculus's ``scaled_location_to_unscaled_location``
  in utils/the_math/formulas.py). Date questions pass epoch seconds as floats.
- A forecast is a CDF of ``CDF_POINTS = 201`` values: ``cdf[k] = P(X <= location k/200)`` of the unit
  interval. ``cdf[0]`` is the mass below the range (0 when the lower bound is closed) and
  ``1 - cdf[200]`` the mass above it (0 when the upper bound is closed); between grid points the CDF
  is linear.
- Its PMF has 202 values: bucket 0 below the range, buckets 1..200 inside it (bucket k covers
  ``((k-1)/200, k/200]``, and bucket 1 also holds the lower bound itself), bucket 201 above it
  (Metaculus's ``unscaled_location_to_bucket_index``).
- A valid forecast follows Metaculus's ``continuous_validation`` (questions/serializers/common.py):
  every in-range step at least ``MIN_STEP = 0.01 / 200`` and at most ``MAX_STEP = 0.2``, at least
  ``MIN_TAIL_MASS = 0.001`` beyond an open bound, exactly 0 / 1 at a closed one; values are compared
  after rounding the CDF to 10 decimals and its steps to 9, as Metaculus does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

CDF_POINTS = 201
BUCKETS = CDF_POINTS - 1  # in-range buckets; the PMF adds one below and one above the range
MIN_STEP = 0.00005  # Metaculus's round(0.01 / 200, 9): a density of at least 0.01 everywhere in the range
MAX_STEP = 0.2  # no more than 20% of the probability in one 1/200 of the range
MIN_TAIL_MASS = 0.001  # beyond an open bound
MIN_INSIDE_MASS = 0.01  # implied by the minimum step (200 steps of 0.00005): 1% inside the range
DECREASE_TOLERANCE = 1e-9

BELOW = "below_lower_bound"
ABOVE = "above_upper_bound"


class CdfError(ValueError):
    """A forecast that is not a valid CDF on the question's grid; the message is for the reader."""


@dataclass(frozen=True)
class Scale:
    """A continuous question's range, its bounds and its scale (linear, or logarithmic about ``zero_point``)."""

    range_min: float
    range_max: float
    open_lower: bool = False
    open_upper: bool = False
    zero_point: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.range_min) and math.isfinite(self.range_max)):
            raise ValueError("range_min and range_max must be finite numbers")
        if not self.range_min < self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        if self.zero_point is not None:
            if not math.isfinite(self.zero_point):
                raise ValueError("zero_point must be a finite number")
            # Metaculus drops a log scale whose zero point lies in the range: the log would be undefined there.
            if self.range_min <= self.zero_point <= self.range_max:
                raise ValueError(f"zero_point ({self.zero_point}) must lie outside the range")

    @property
    def open_bounds(self) -> int:
        return int(self.open_lower) + int(self.open_upper)

    def _log_ratio(self) -> tuple[float, float]:
        """``(range_min - zero_point, ln r)`` with Metaculus's ``deriv_ratio`` r = (max - zp) / (min - zp)."""
        assert self.zero_point is not None
        offset = self.range_min - self.zero_point
        return offset, math.log1p((self.range_max - self.range_min) / offset)

    def to_unit(self, x: ArrayLike) -> np.ndarray | float:
        """Real values -> unit positions (0 at range_min, 1 at range_max; outside the range below 0 / above 1).

        Log scale: ``ln((x - zp) / (min - zp)) / ln r``, Metaculus's formula rewritten with log1p for
        precision. A value beyond the zero point (no logarithm) is infinitely far outside the range.
        """
        values = np.asarray(x, dtype=float)
        span = self.range_max - self.range_min
        if self.zero_point is None:
            result = (values - self.range_min) / span
        else:
            offset, log_ratio = self._log_ratio()
            scaled = (values - self.range_min) / offset  # (x - zp) / (min - zp) - 1
            beyond = scaled <= -1  # at or past the zero point (NaN stays NaN)
            result = np.log1p(np.where(beyond, 0.0, scaled)) / log_ratio
            # the zero point lies below the range when offset > 0, above it otherwise
            result = np.where(beyond, -np.inf if offset > 0 else np.inf, result)
        return float(result) if result.ndim == 0 else result

    def from_unit(self, u: ArrayLike) -> np.ndarray | float:
        """Unit positions -> real values (Metaculus's ``unscaled_location_to_scaled_location``)."""
        positions = np.asarray(u, dtype=float)
        if self.zero_point is None:
            result = self.range_min + (self.range_max - self.range_min) * positions
        else:
            offset, log_ratio = self._log_ratio()
            # min + (max - min) (r^u - 1) / (r - 1) = min + (min - zp) (r^u - 1)
            with np.errstate(over="ignore"):  # far beyond the range: infinite
                result = self.range_min + offset * np.expm1(positions * log_ratio)
        return float(result) if result.ndim == 0 else result

    def grid(self) -> np.ndarray:
        """The real values of the 201 grid points, from range_min to range_max."""
        values = np.asarray(self.from_unit(np.linspace(0.0, 1.0, CDF_POINTS)))
        values[0], values[-1] = self.range_min, self.range_max  # exact despite the log scale's rounding
        return values

    def outcome_position(self, value: float | str) -> float:
        """The unit position of a resolution: a number (or numeric string), or ``"below_lower_bound"`` (-inf)
        / ``"above_upper_bound"`` (+inf). Raises ValueError for an outcome a closed bound rules out."""
        if isinstance(value, str):
            if value == BELOW:
                position = -math.inf
            elif value == ABOVE:
                position = math.inf
            else:
                try:
                    number = float(value)
                except ValueError:
                    raise ValueError(f"unknown outcome {value!r}") from None
                return self.outcome_position(number)
        else:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"an outcome must be a finite number, got {value!r}")
            position = float(self.to_unit(number))
        if position < 0 and not self.open_lower:
            raise ValueError(f"outcome {value!r} is below the range and the lower bound is closed")
        if position > 1 and not self.open_upper:
            raise ValueError(f"outcome {value!r} is above the range and the upper bound is closed")
        return position


def as_cdf_array(cdf: ArrayLike) -> np.ndarray:
    """201 finite floats, or CdfError."""
    try:
        values = np.asarray(cdf, dtype=float)
    except (TypeError, ValueError):
        raise CdfError("the CDF must be a list of numbers") from None
    if values.ndim != 1 or len(values) != CDF_POINTS:
        raise CdfError(f"the CDF must have {CDF_POINTS} values, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise CdfError("the CDF's values must be finite numbers")
    return values


def as_cdf_matrix(cdfs: ArrayLike) -> np.ndarray:
    """An ``(n, 201)`` float array of finite values (one CDF is one row), or ValueError."""
    values = np.atleast_2d(np.asarray(cdfs, dtype=float))
    if values.ndim != 2 or values.shape[1] != CDF_POINTS:
        raise ValueError(f"CDFs must be an (n forecasters, {CDF_POINTS}) array")
    if not np.all(np.isfinite(values)):
        raise ValueError("CDF values must be finite numbers")
    return values


def validate_cdf(cdf: ArrayLike, scale: Scale) -> np.ndarray:
    """The CDF as Metaculus stores it (rounded to 10 decimals), or CdfError naming the first rule it breaks."""
    values = np.round(as_cdf_array(cdf), 10)
    if np.any((values < 0) | (values > 1)):
        raise CdfError("the CDF's values must lie between 0 and 1")
    steps = np.diff(values)
    decreasing = steps < -DECREASE_TOLERANCE
    if np.any(decreasing):
        where = int(np.argmax(decreasing))
        raise CdfError(f"the CDF must be non-decreasing (it decreases after grid point {where})")
    if not scale.open_lower and values[0] != 0:
        raise CdfError("the lower bound is closed: the CDF must start at 0 (no probability below the range)")
    if not scale.open_upper and values[-1] != 1:
        raise CdfError("the upper bound is closed: the CDF must end at 1 (no probability above the range)")
    if scale.open_lower and values[0] < MIN_TAIL_MASS:
        raise CdfError("the lower bound is open: at least 0.1% of the probability must fall below the range")
    if scale.open_upper and values[-1] > 1 - MIN_TAIL_MASS:
        raise CdfError("the upper bound is open: at least 0.1% of the probability must fall above the range")
    if round(values[-1] - values[0], 9) < MIN_INSIDE_MASS:
        raise CdfError("at least 1% of the probability must fall inside the range")
    rounded_steps = np.round(steps, 9)
    if np.any(rounded_steps < MIN_STEP):
        raise CdfError(
            f"the CDF must rise by at least {MIN_STEP:.5f} at every step of the range"
            " (no part of the range may get less than 1% of a uniform forecast's probability)"
        )
    if np.any(rounded_steps > MAX_STEP):
        raise CdfError(
            f"the CDF must rise by at most {MAX_STEP} at any step"
            " (no 1/200 of the range may hold more than 20% of the probability)"
        )
    return values


def pmf(cdf: ArrayLike) -> np.ndarray:
    """The 202 bucket masses ``[cdf[0], diff(cdf)..., 1 - cdf[-1]]`` (along the last axis of an ``(n, 201)`` array)."""
    values = np.asarray(cdf, dtype=float)
    return np.concatenate([values[..., :1], np.diff(values), 1.0 - values[..., -1:]], axis=-1)


def outcome_bucket(position: float) -> int:
    """The PMF bucket of a unit position: 0 below the range, 201 above, else 1..200 (Metaculus's edges).

    A position on an inner edge k/200 belongs to bucket k (the bucket it closes); range_min to bucket 1.
    """
    if math.isnan(position):
        raise ValueError("an outcome position must be a number")
    if position < 0:
        return 0
    if position > 1:
        return BUCKETS + 1
    # Metaculus's 1e-10 keeps an edge k/200 (1 included) whose product rounds just above k in bucket k
    return max(int(position * BUCKETS + 1 - 1e-10), 1)


def quantile(cdf: ArrayLike, q: float | ArrayLike) -> np.ndarray | float:
    """Unit positions where the piecewise-linear CDF reaches ``q``: -inf below ``cdf[0]``, +inf above ``cdf[-1]``.

    On a flat stretch the leftmost position is returned (Metaculus's ``percent_point_function`` picks the
    same point on a strictly increasing CDF).
    """
    values = np.asarray(cdf, dtype=float)
    levels = np.asarray(q, dtype=float)
    if np.any(~np.isfinite(levels) | (levels < 0) | (levels > 1)):
        raise ValueError("quantile levels must lie between 0 and 1")
    flat = np.atleast_1d(levels)
    positions = np.full(flat.shape, np.inf)  # above cdf[-1]: beyond the range
    positions[flat == values[0]] = 0.0
    positions[flat < values[0]] = -np.inf
    crossing = (flat > values[0]) & (flat <= values[-1])
    inner = flat[crossing]
    k = np.searchsorted(values, inner)  # the first grid point with cdf >= q: 1..200, and cdf[k - 1] < q
    positions[crossing] = (k - 1 + (inner - values[k - 1]) / (values[k] - values[k - 1])) / BUCKETS
    return float(positions[0]) if levels.ndim == 0 else positions


def density(cdf: ArrayLike) -> np.ndarray:
    """The 200 in-range densities per unit of the scaled range (1 everywhere for a uniform forecast), for drawing."""
    return np.diff(np.asarray(cdf, dtype=float)) * BUCKETS
