"""Proper scoring rules. Pure functions on numpy arrays: no Django import.

Conventions (documented in the README and on the question page):

- A forecast on a question with k outcomes is a probability vector of length k. A binary
  question has k = 2 with outcome index 1 meaning YES, and its forecasts are usually given
  as the single probability of YES.
- Binary Brier score is ``(p - o)**2`` (0 is perfect, 1 is the worst, 0.25 is a 50% forecast),
  the convention of most forecasting literature. Multiple-choice Brier score is
  ``sum_i (p_i - o_i)**2`` (0 to 2).
- Log score is ``ln(p_outcome)``: 0 is perfect, more negative is worse. Probabilities are
  clipped to ``[LOG_SCORE_FLOOR, 1]`` so that a forecast of 0 gives a finite score.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

LOG_SCORE_FLOOR = 1e-3


def _as_binary(probability_yes: ArrayLike, outcome: int) -> tuple[np.ndarray, int]:
    p = np.asarray(probability_yes, dtype=float)
    if outcome not in (0, 1):
        raise ValueError(f"binary outcome must be 0 or 1, got {outcome!r}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return p, outcome


def binary_brier(probability_yes: ArrayLike, outcome: int) -> np.ndarray | float:
    """Brier score ``(p - o)**2`` of one or many probabilities of YES; lower is better."""
    p, o = _as_binary(probability_yes, outcome)
    result = (p - o) ** 2
    return float(result) if result.ndim == 0 else result


def binary_log(probability_yes: ArrayLike, outcome: int) -> np.ndarray | float:
    """Log score ``ln(p if YES else 1 - p)``; higher (closer to 0) is better."""
    p, o = _as_binary(probability_yes, outcome)
    p_outcome = p if o == 1 else 1.0 - p
    result = np.log(np.clip(p_outcome, LOG_SCORE_FLOOR, 1.0))
    return float(result) if result.ndim == 0 else result


def _as_categorical(probabilities: ArrayLike, outcome_index: int) -> np.ndarray:
    p = np.atleast_2d(np.asarray(probabilities, dtype=float))
    k = p.shape[1]
    if not 0 <= outcome_index < k:
        raise ValueError(f"outcome index {outcome_index} is not one of the {k} options")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("each forecast's probabilities must sum to 1")
    return p


def categorical_brier(probabilities: ArrayLike, outcome_index: int) -> np.ndarray | float:
    """Brier score ``sum_i (p_i - o_i)**2`` of one forecast (1-D) or many (2-D, one per row)."""
    single = np.ndim(probabilities) == 1
    p = _as_categorical(probabilities, outcome_index)
    truth = np.zeros(p.shape[1])
    truth[outcome_index] = 1.0
    result = ((p - truth) ** 2).sum(axis=1)
    return float(result[0]) if single else result


def categorical_log(probabilities: ArrayLike, outcome_index: int) -> np.ndarray | float:
    """Log score ``ln(p_outcome)`` of one forecast (1-D) or many (2-D, one per row)."""
    single = np.ndim(probabilities) == 1
    p = _as_categorical(probabilities, outcome_index)
    result = np.log(np.clip(p[:, outcome_index], LOG_SCORE_FLOOR, 1.0))
    return float(result[0]) if single else result


# --- Metaculus-style baseline and peer scores ----------------------------------------------------
#
# Both are in "points": the baseline score compares a forecast with the uniform forecast
# (0 for 50% on a binary question, 100 for certainty on the outcome), the peer score with the
# other forecasters on the same question (it sums to zero over forecasters).


def _probability_of_outcome(probabilities: ArrayLike, outcome_index: int) -> tuple[np.ndarray, int]:
    """``(n,)`` probabilities given to the outcome and the number of outcomes k."""
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1:  # probabilities of YES
        _as_binary(p, outcome_index)
        return (p if outcome_index == 1 else 1.0 - p), 2
    p = _as_categorical(p, outcome_index)
    return p[:, outcome_index], p.shape[1]


def baseline_score(probabilities: ArrayLike, outcome_index: int) -> np.ndarray:
    """``100 * (ln p_outcome - ln(1/k)) / ln k`` per forecaster (binary: ``100 * (log2 p + 1)``).

    ``probabilities`` is a 1-D array of P(YES) (binary) or an ``(n, k)`` array.
    """
    p_outcome, k = _probability_of_outcome(probabilities, outcome_index)
    return 100.0 * (np.log(np.clip(p_outcome, LOG_SCORE_FLOOR, 1.0)) + np.log(k)) / np.log(k)


def peer_score(probabilities: ArrayLike, outcome_index: int) -> np.ndarray:
    """``100 * (ln p_i - mean_{j != i} ln p_j)`` per forecaster; 0 for a lone forecaster."""
    p_outcome, _ = _probability_of_outcome(probabilities, outcome_index)
    logs = np.log(np.clip(p_outcome, LOG_SCORE_FLOOR, 1.0))
    n = len(logs)
    if n < 2:
        return np.zeros(n)
    others_mean = (logs.sum() - logs) / (n - 1)
    return 100.0 * (logs - others_mean)


SPOT_SCORES = ("brier", "log", "baseline", "peer")


def spot_scores(probabilities: ArrayLike, outcome_index: int) -> dict[str, np.ndarray]:
    """Every score of each forecaster's standing forecast (rows of ``(n, k)``) at one moment."""
    p = np.atleast_2d(np.asarray(probabilities, dtype=float))
    if p.shape[1] == 2:
        yes = p[:, 1]
        brier, log = binary_brier(yes, outcome_index), binary_log(yes, outcome_index)
    else:
        brier, log = categorical_brier(p, outcome_index), categorical_log(p, outcome_index)
    return {
        "brier": np.atleast_1d(brier),
        "log": np.atleast_1d(log),
        "baseline": baseline_score(p, outcome_index),
        "peer": peer_score(p, outcome_index),
    }


def uniform_scores(k: int, outcome_index: int) -> dict[str, float]:
    """Every score of the uniform forecast ``1/k`` (the "no information" forecast)."""
    uniform = np.full(k, 1.0 / k)
    spot = spot_scores(uniform, outcome_index)
    return {name: float(values[0]) for name, values in spot.items()}


def time_averaged_scores(
    forecaster_index: ArrayLike,
    made_at: ArrayLike,
    probabilities: ArrayLike,
    outcome_index: int,
    *,
    opens_at: float,
    closes_at: float,
    ended_at: float | None = None,
    n_forecasters: int | None = None,
) -> dict[str, np.ndarray]:
    """Each forecaster's scores averaged over the question's scheduled period.

    Inputs describe every forecast: the forecaster's index (0..n-1), when it was made (any
    increasing number, e.g. epoch seconds) and its probabilities (``(m, k)``). The period is
    ``[opens_at, closes_at]``, ``closes_at`` being the *scheduled* close. ``ended_at`` (default
    ``closes_at``) is when forecasting actually stopped: an early resolution or a manual close.
    A forecast stands from when it was made until the same forecaster's next one or ``ended_at``;
    forecasts made before ``opens_at`` stand from ``opens_at``, those from ``ended_at`` on never stand.

    Conventions (Metaculus's "score truncation", which keeps every score proper when the time a
    question resolves depends on its outcome: the weight of each moment is fixed in advance):
    - ``baseline`` and ``peer``: averaged over the whole period ``[opens_at, closes_at]``; time
      without a standing forecast (before a forecaster's first forecast, after an early end)
      counts 0 points. The peer score at each moment compares with the forecasters who have a
      standing forecast then.
    - ``brier`` and ``log``: averaged over ``[first forecast, closes_at]``; after an early end the
      time counts as the uniform forecast's score (Brier ``(k-1)/k``, log ``ln(1/k)``; the
      equivalent of 0 baseline points). Averaging over the time a forecast stood instead would
      divide by a duration that depends on the outcome, which is not proper. NaN for a forecaster
      whose forecasts never stood.
    - ``coverage``: the fraction of the period the forecaster had a standing forecast.

    Returns arrays indexed by forecaster. Runs in O(m log m) whatever the number of forecasters
    (the peer term uses prefix sums over the timeline instead of a loop per forecaster).
    """
    ended_at = closes_at if ended_at is None else min(ended_at, closes_at)
    who = np.asarray(forecaster_index, dtype=int)
    p = np.atleast_2d(np.asarray(probabilities, dtype=float))
    n = int(n_forecasters if n_forecasters is not None else (who.max() + 1 if len(who) else 0))
    total = float(closes_at - opens_at)
    if total <= 0:
        raise ValueError("closes_at must be after opens_at")
    ended_at = max(ended_at, opens_at)
    when = np.clip(np.asarray(made_at, dtype=float), opens_at, ended_at)
    empty = {name: np.zeros(n) for name in (*SPOT_SCORES, "coverage")}
    if len(who) == 0:
        return empty

    order = np.lexsort((np.arange(len(who)), when))  # by time, ties in input order
    who, when, p = who[order], when[order], p[order]
    # Each forecast stands until the same forecaster's next forecast (or the end).
    ends = np.full(len(who), float(ended_at))
    last_seen: dict[int, int] = {}
    for i in range(len(who) - 1, -1, -1):
        nxt = last_seen.get(who[i])
        if nxt is not None:
            ends[i] = when[nxt]
        last_seen[who[i]] = i
    durations = ends - when

    spot = spot_scores(p, outcome_index)
    coverage = np.bincount(who, weights=durations, minlength=n)
    result = {"coverage": coverage / total}
    first = np.full(n, np.inf)
    np.minimum.at(first, who, when)
    own_period = float(closes_at) - first  # from the first forecast to the scheduled close
    uniform = uniform_scores(p.shape[1], outcome_index)
    for name in ("brier", "log"):
        weighted = np.bincount(who, weights=spot[name] * durations, minlength=n)
        # the time from the early end to the scheduled close scores as the uniform forecast
        weighted += uniform[name] * (float(closes_at) - float(ended_at)) * (coverage > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            result[name] = np.where(coverage > 0, weighted / np.where(coverage > 0, own_period, 1), np.nan)
    result["baseline"] = np.bincount(who, weights=spot["baseline"] * durations, minlength=n) / total

    logs = np.log(np.clip(p[np.arange(len(p)), outcome_index] if p.shape[1] > 1 else p[:, 0], LOG_SCORE_FLOOR, 1.0))
    times = np.append(when, ended_at)
    result["peer"] = 100.0 * peer_log_integral(who, logs, times, next_forecast_index(who), n) / total
    return result


# --- calibration ----------------------------------------------------------------------------------


def calibration_table(probabilities: ArrayLike, outcomes: ArrayLike, *, bins: int = 10) -> list[dict]:
    """Reliability bins of equal width over [0, 1]: count, mean forecast and observed frequency.

    ``probabilities`` are forecasts of events and ``outcomes`` 1 where the event happened
    (for multiple choice, pass every option's probability with 1 for the option that won).
    Empty bins are included with count 0 so that tables line up.
    """
    p = np.asarray(probabilities, dtype=float)
    o = np.asarray(outcomes, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        rows.append(
            {
                "bin_low": b / bins,
                "bin_high": (b + 1) / bins,
                "count": count,
                "mean_forecast": float(p[mask].mean()) if count else None,
                "observed_frequency": float(o[mask].mean()) if count else None,
            }
        )
    return rows


def expected_calibration_error(probabilities: ArrayLike, outcomes: ArrayLike, *, bins: int = 10) -> float:
    """Σ_b (n_b / N) |mean forecast_b − observed frequency_b| over equal-width bins."""
    table = calibration_table(probabilities, outcomes, bins=bins)
    total = sum(row["count"] for row in table)
    if total == 0:
        return float("nan")
    return float(
        sum(row["count"] * abs(row["mean_forecast"] - row["observed_frequency"]) for row in table if row["count"])
        / total
    )


def next_forecast_index(who: np.ndarray) -> np.ndarray:
    """For forecasts in time order, the position of the same forecaster's next forecast (``len(who)``
    for their last): forecast i stands over the intervals [i, next_i) of the timeline."""
    end_index = np.full(len(who), len(who))
    seen: dict[int, int] = {}
    for i in range(len(who) - 1, -1, -1):
        if who[i] in seen:
            end_index[i] = seen[who[i]]
        seen[who[i]] = i
    return end_index


def peer_log_integral(
    who: np.ndarray, logs: np.ndarray, times: np.ndarray, end_index: np.ndarray, n: int
) -> np.ndarray:
    """Each forecaster's log score minus the mean of the others' standing ones, integrated over time.

    Forecasts are in time order (``who[j]`` made forecast j with log score ``logs[j]``); ``times`` has one
    more entry than forecasts, the end of the timeline. On each interval between consecutive forecasts,
    with c forecasters standing and S the sum of their log scores, forecaster i earns
    ``l_i - (S - l_i) / (c - 1) = (l_i c - S) / (c - 1)`` per unit time (0 when c < 2); prefix sums over
    the intervals give each forecast's total in O(1), so the whole is O(m log m) for m forecasts.
    """
    m = len(who)
    standing = np.full(n, np.nan)
    count, log_sum = 0, 0.0
    counts, sums = np.empty(m), np.empty(m)
    for j in range(m):
        f = who[j]
        if np.isnan(standing[f]):
            count += 1
        else:
            log_sum -= standing[f]
        standing[f] = logs[j]
        log_sum += logs[j]
        counts[j], sums[j] = count, log_sum
    interval = np.diff(times)  # interval j runs from forecast j's time to the next forecast's
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(counts > 1, interval * counts / (counts - 1), 0.0)
        b = np.where(counts > 1, interval * sums / (counts - 1), 0.0)
    prefix_a = np.concatenate([[0.0], np.cumsum(a)])
    prefix_b = np.concatenate([[0.0], np.cumsum(b)])
    start = np.arange(m)
    contribution = logs * (prefix_a[end_index] - prefix_a[start]) - (prefix_b[end_index] - prefix_b[start])
    return np.bincount(who, weights=contribution, minlength=n)
