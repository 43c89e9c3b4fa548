"""Scores of continuous forecasts. Pure numpy: no Django import.

Conventions (Metaculus's scoring/score_math.py, ``evaluate_forecasts_baseline_*`` and ``_peer_*``):

- An outcome is a unit position (``Scale.outcome_position``; -inf / +inf below / above the range) and
  falls in one PMF bucket (``outcome_bucket``). A forecast is judged by the mass ``p`` of that bucket.
- ``log``: ``ln(p * 200)`` inside the range, the log density per unit of the scaled range (0 for the
  uniform forecast), and ``ln(p)`` below / above it, where ``p`` is the whole tail's mass (Metaculus
  compares the tail's mass with a baseline mass, not a density). ``p`` is floored at ``PROBABILITY_FLOOR``
  so that every score is finite; a valid forecast never reaches the floor (its buckets hold at least
  0.00005 and its open tails 0.001).
- ``baseline``: ``100 * ln(p / b) / 2`` with Metaculus's baseline forecast ``b``: 5% beyond each open
  bound, the rest uniform over the range: ``b = (1 - 0.05 * open bounds) / 200`` per bucket, ``0.05``
  for a tail. The division by 2 is Metaculus's, for continuous questions only. 0 for the baseline
  forecast itself (``baseline_cdf``).
- ``peer``: ``100 * n / (n - 1) * ln(p_i / g) / 2`` with g the geometric mean of all n forecasters' p,
  i.e. ``50 * (ln p_i - mean_{j != i} ln p_j)``: sums to 0 over forecasters, 0 for a lone forecaster.
- ``crps``: the continuous ranked probability score in units of the range, lower is better:
  ``∫_0^1 (F(u) - 1[u >= y])^2 du`` with ``y = clip(position, 0, 1)``, by the trapezoid rule over the
  201 grid points. That is a weighted sum of Brier scores of the events "X <= k/200" (weights 1/200,
  1/400 at both ends), so it is proper; an outcome above the range, clipped to 1, counts as being at
  range_max in the last event (weight 1/400). Hand check: the uniform forecast scores about
  ``1/3 - y + y^2``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from forecasting.scoring import next_forecast_index, peer_log_integral

from .grid import BUCKETS, CDF_POINTS, Scale, outcome_bucket, pmf
from .grid import as_cdf_matrix as _as_cdfs

BASELINE_TAIL_MASS = 0.05  # Metaculus's baseline forecast puts 5% beyond each open bound
CONTINUOUS_DIVISOR = 2.0  # Metaculus halves continuous baseline and peer scores
PROBABILITY_FLOOR = 1e-9
SPOT_SCORES = ("log", "baseline", "peer", "crps")
UNIT_GRID = np.linspace(0.0, 1.0, CDF_POINTS)


def _check_position(scale: Scale, position: float) -> int:
    """The outcome's bucket, after checking that the question's bounds allow it."""
    bucket = outcome_bucket(position)
    if bucket == 0 and not scale.open_lower:
        raise ValueError("the outcome is below the range but the lower bound is closed")
    if bucket == BUCKETS + 1 and not scale.open_upper:
        raise ValueError("the outcome is above the range but the upper bound is closed")
    return bucket


def _log_densities(cdfs: np.ndarray, scale: Scale, position: float) -> np.ndarray:
    bucket = _check_position(scale, position)
    logs = np.log(np.maximum(pmf(cdfs)[:, bucket], PROBABILITY_FLOOR))
    return logs + math.log(BUCKETS) if 1 <= bucket <= BUCKETS else logs


def log_density(cdf: ArrayLike, scale: Scale, position: float) -> float:
    """``ln(p * 200)`` for an outcome inside the range, ``ln(p)`` for one beyond a bound (p: the bucket's mass)."""
    return float(_log_densities(_as_cdfs(cdf), scale, position)[0])


def _baseline_log_density(scale: Scale, position: float) -> float:
    """The log density (``log_density``'s convention) of Metaculus's baseline forecast at the outcome."""
    bucket = _check_position(scale, position)
    if 1 <= bucket <= BUCKETS:
        return math.log(1.0 - BASELINE_TAIL_MASS * scale.open_bounds)
    return math.log(BASELINE_TAIL_MASS)


def baseline_cdf(scale: Scale) -> np.ndarray:
    """Metaculus's baseline forecast: 5% beyond each open bound, the rest uniform over the range."""
    below = BASELINE_TAIL_MASS if scale.open_lower else 0.0
    inside = 1.0 - BASELINE_TAIL_MASS * scale.open_bounds
    return below + inside * UNIT_GRID


def baseline_score(cdfs: ArrayLike, scale: Scale, position: float) -> np.ndarray:
    """``100 * ln(p / baseline p) / 2`` per forecaster (rows of ``(n, 201)``)."""
    logs = _log_densities(_as_cdfs(cdfs), scale, position)
    return 100.0 * (logs - _baseline_log_density(scale, position)) / CONTINUOUS_DIVISOR


def peer_score(cdfs: ArrayLike, scale: Scale, position: float) -> np.ndarray:
    """``100 * (ln p_i - mean_{j != i} ln p_j) / 2`` per forecaster; 0 for a lone forecaster."""
    logs = _log_densities(_as_cdfs(cdfs), scale, position)
    n = len(logs)
    if n < 2:
        return np.zeros(n)
    others_mean = (logs.sum() - logs) / (n - 1)
    return 100.0 * (logs - others_mean) / CONTINUOUS_DIVISOR


def crps(cdf: ArrayLike, position: float) -> float | np.ndarray:
    """CRPS in units of the range of one CDF (a float) or of each row of ``(n, 201)`` (an array); lower is better."""
    if math.isnan(position):
        raise ValueError("an outcome position must be a number")
    single = np.ndim(cdf) == 1
    values = _as_cdfs(cdf)
    y = min(max(position, 0.0), 1.0)
    step = np.where(y <= UNIT_GRID, 1.0, 0.0)  # the outcome's own CDF at the grid points
    result = np.trapezoid((values - step) ** 2, dx=1.0 / BUCKETS)
    return float(result[0]) if single else result


def spot_scores(cdfs: ArrayLike, scale: Scale, position: float) -> dict[str, np.ndarray]:
    """Every score of each forecaster's standing forecast (rows of ``(n, 201)``) at one moment."""
    values = _as_cdfs(cdfs)
    return {
        "log": _log_densities(values, scale, position),
        "baseline": baseline_score(values, scale, position),
        "peer": peer_score(values, scale, position),
        "crps": np.atleast_1d(crps(values, position)),
    }


def uniform_scores(scale: Scale, position: float) -> dict[str, float]:
    """Every score of Metaculus's baseline forecast (uniform in the range, 5% beyond each open bound)."""
    spot = spot_scores(baseline_cdf(scale), scale, position)
    return {name: float(values[0]) for name, values in spot.items()}


def _timeline(who: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts by time (ties in input order) and, for each, the position of the same forecaster's next one."""
    order = np.lexsort((np.arange(len(who)), when))
    return order, next_forecast_index(who[order])


def time_averaged_scores(
    forecaster_index: ArrayLike,
    made_at: ArrayLike,
    cdfs: ArrayLike,
    scale: Scale,
    position: float,
    *,
    opens_at: float,
    closes_at: float,
    ended_at: float | None = None,
    n_forecasters: int | None = None,
) -> dict[str, np.ndarray]:
    """Each forecaster's scores averaged over the question's scheduled period (forecasting/scoring.py's rules).

    Inputs describe every forecast: the forecaster's index (0..n-1), when it was made and its CDF
    (``(m, 201)``); ``position`` is the outcome's unit position. The period is ``[opens_at, closes_at]``
    (the *scheduled* close); ``ended_at`` (default ``closes_at``) is when forecasting actually stopped.
    A forecast stands from when it was made (``opens_at`` at the earliest) until the same forecaster's
    next one or ``ended_at``; forecasts from ``ended_at`` on never stand.

    Metaculus's score truncation keeps every score proper when the time a question resolves depends
    on its outcome:
    - ``baseline`` and ``peer``: averaged over the whole period; time without a standing forecast
      counts 0. The peer score at each moment compares with those who have a standing forecast then.
    - ``log`` and ``crps``: averaged over ``[first forecast, closes_at]``; the time after an early end
      counts as the score of Metaculus's baseline forecast (``baseline_cdf``, 0 baseline points). NaN
      for a forecaster whose forecasts never stood.
    - ``coverage``: the fraction of the period the forecaster had a standing forecast.

    Runs in O(m log m + 201 m) whatever the number of forecasters (prefix sums for the peer term).
    """
    who = np.asarray(forecaster_index, dtype=int)
    values = _as_cdfs(cdfs) if len(who) else np.zeros((0, CDF_POINTS))
    if len(values) != len(who):
        raise ValueError("one CDF per forecast")
    n = int(n_forecasters if n_forecasters is not None else (who.max() + 1 if len(who) else 0))
    total = float(closes_at - opens_at)
    if total <= 0:
        raise ValueError("closes_at must be after opens_at")
    ended_at = float(closes_at if ended_at is None else min(ended_at, closes_at))
    ended_at = max(ended_at, float(opens_at))
    if len(who) == 0:
        return {name: np.zeros(n) for name in (*SPOT_SCORES, "coverage")}

    when = np.clip(np.asarray(made_at, dtype=float), opens_at, ended_at)
    order, end_index = _timeline(who, when)
    who, when, values = who[order], when[order], values[order]
    times = np.append(when, ended_at)
    durations = times[end_index] - when

    spot = spot_scores(values, scale, position)
    coverage = np.bincount(who, weights=durations, minlength=n)
    result = {"coverage": coverage / total}
    first = np.full(n, np.inf)
    np.minimum.at(first, who, when)
    own_period = float(closes_at) - first
    uniform = uniform_scores(scale, position)
    for name in ("log", "crps"):
        weighted = np.bincount(who, weights=spot[name] * durations, minlength=n)
        weighted += uniform[name] * (float(closes_at) - ended_at)
        result[name] = np.divide(weighted, own_period, out=np.full(n, np.nan), where=coverage > 0)
    result["baseline"] = np.bincount(who, weights=spot["baseline"] * durations, minlength=n) / total
    # Metaculus's continuous peer score: the binary one's log differences halved
    result["peer"] = 100.0 / CONTINUOUS_DIVISOR * peer_log_integral(who, spot["log"], times, end_index, n) / total
    return result
