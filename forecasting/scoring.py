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
