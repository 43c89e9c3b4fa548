"""Community aggregates of forecasters' latest forecasts. Pure numpy: no Django import."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def median(probabilities_yes: ArrayLike) -> float | None:
    """Median probability of YES over forecasters; ``None`` when nobody has forecast."""
    p = np.asarray(probabilities_yes, dtype=float)
    if p.size == 0:
        return None
    return float(np.median(p))


def categorical_median(probabilities: ArrayLike) -> np.ndarray | None:
    """Per-option median over forecasters (one row each), renormalised to sum to 1."""
    p = np.asarray(probabilities, dtype=float)
    if p.size == 0:
        return None
    p = np.atleast_2d(p)
    per_option = np.median(p, axis=0)
    return per_option / per_option.sum()
