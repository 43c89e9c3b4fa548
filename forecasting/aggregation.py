"""Community aggregates of forecasters' latest forecasts. Pure numpy: no Django import.

Every method takes ``probabilities``, an ``(n, k)`` array with one row per forecaster (their
latest forecast, k outcomes: ``[P(no), P(yes)]`` for a binary question) ordered from the
oldest forecast to the newest, and returns a length-k probability vector that sums to 1.
Methods are registered in ``AGGREGATORS`` under a stable name that the database, the API and
the exports use; the Bayesian aggregate registers itself as ``bayes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

LOGODDS_CLIP = (0.01, 0.99)
DEFAULT_EXTREMIZING_FACTOR = 1.0  # no extremizing until enough questions have resolved
EXTREMIZING_BOUNDS = (0.5, 4.0)


def as_matrix(probabilities: ArrayLike) -> np.ndarray:
    """``(n, k)`` float array; a 1-D input is read as n probabilities of YES."""
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError("probabilities must be an (n forecasters, k outcomes) array")
    return p


def _normalise(vector: np.ndarray) -> np.ndarray:
    return vector / vector.sum()


def mean(probabilities: ArrayLike) -> np.ndarray:
    """Arithmetic mean of the forecasts."""
    return _normalise(as_matrix(probabilities).mean(axis=0))


def median(probabilities: ArrayLike) -> np.ndarray:
    """Per-outcome median, renormalised (for a binary question: the median P(YES))."""
    p = as_matrix(probabilities)
    if p.shape[1] == 2:
        yes = float(np.median(p[:, 1]))
        return np.array([1.0 - yes, yes])
    return _normalise(np.median(p, axis=0))


def recency_weights(n: int) -> np.ndarray:
    """Metaculus's community-prediction weights: exp(sqrt(i) - sqrt(n)) for i = 1..n, oldest first."""
    if n <= 2:
        return np.ones(n)
    i = np.arange(1, n + 1, dtype=float)
    return np.exp(np.sqrt(i) - np.sqrt(n))


def weighted_median(values: ArrayLike, weights: ArrayLike) -> float:
    """The value at which the cumulative weight reaches half; the midpoint when it lands exactly on half."""
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cumulative = np.cumsum(w) / w.sum()
    j = int(np.searchsorted(cumulative, 0.5 - 1e-12))
    if abs(cumulative[j] - 0.5) < 1e-12 and j + 1 < len(v):
        return float((v[j] + v[j + 1]) / 2)
    return float(v[j])


METACULUS_MIN_PROBABILITY = 0.001  # the smallest value a multiple-choice forecast can give an option there


def squeeze_multiple_choice(medians: ArrayLike, floor: float = METACULUS_MIN_PROBABILITY) -> np.ndarray:
    """Metaculus's normalisation of per-option medians: ``(m - floor) / Σ(m - floor) * (1 - k floor) + floor``.

    Subtracting the floor before renormalising keeps an option whose median sits at the floor
    exactly there (dividing by the sum would inflate it), and the result lies in
    ``[floor, 1 - (k - 1) floor]``. Medians below the floor (Metaculus never has them) are
    raised to it first; if every median is at the floor the result is uniform.
    """
    m = np.maximum(np.asarray(medians, dtype=float), floor) - floor
    k = len(m)
    if m.sum() <= 0:
        return np.full(k, 1.0 / k)
    return m / m.sum() * (1.0 - k * floor) + floor


def recency_weighted_median(probabilities: ArrayLike) -> np.ndarray:
    """Metaculus's community prediction: weighted median with recency weights (rows oldest first).

    Binary: the weighted median of P(YES). Multiple choice: each option's weighted median,
    normalised as Metaculus does (``squeeze_multiple_choice``).
    """
    p = as_matrix(probabilities)
    weights = recency_weights(len(p))
    if p.shape[1] == 2:
        yes = weighted_median(p[:, 1], weights)
        return np.array([1.0 - yes, yes])
    return squeeze_multiple_choice([weighted_median(p[:, j], weights) for j in range(p.shape[1])])


def _mean_log_probabilities(probabilities: ArrayLike) -> np.ndarray:
    p = np.clip(as_matrix(probabilities), *LOGODDS_CLIP)
    return np.log(p).mean(axis=0)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def logodds_mean(probabilities: ArrayLike) -> np.ndarray:
    """Mean of log-odds of probabilities clipped to [0.01, 0.99] (the normalised geometric mean for k > 2)."""
    return _softmax(_mean_log_probabilities(probabilities))


def extremized_logodds(probabilities: ArrayLike, factor: float = DEFAULT_EXTREMIZING_FACTOR) -> np.ndarray:
    """The log-odds mean pushed away from the uniform forecast: log-odds times ``factor``."""
    return _softmax(factor * _mean_log_probabilities(probabilities))


def fit_extremizing_factor(
    mean_log_probabilities: list[np.ndarray], outcome_indexes: list[int], *, bounds=EXTREMIZING_BOUNDS
) -> float:
    """The factor that minimises the log loss of ``softmax(d * mean log p)`` on resolved questions.

    Takes, per resolved question, the forecasters' mean log probability per outcome (see
    ``mean_log_probabilities``) and the index of the outcome that happened. Fit only on
    questions resolved before the ones it will be applied to.
    """
    if not mean_log_probabilities:
        return DEFAULT_EXTREMIZING_FACTOR

    # Questions grouped by number of outcomes so that the log loss is a few array operations.
    groups: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in {len(v) for v in mean_log_probabilities}:
        rows = [i for i, v in enumerate(mean_log_probabilities) if len(v) == k]
        groups[k] = (
            np.vstack([mean_log_probabilities[i] for i in rows]),
            np.asarray([outcome_indexes[i] for i in rows], dtype=int),
        )

    def loss(d: float) -> float:
        total = 0.0
        for logs, outcomes in groups.values():
            scaled = d * logs
            top = scaled.max(axis=1, keepdims=True)
            log_normaliser = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
            total -= float((scaled[np.arange(len(outcomes)), outcomes] - log_normaliser).sum())
        return total

    return float(minimize_scalar(loss, bounds=bounds, method="bounded").x)


def mean_log_probabilities(probabilities: ArrayLike) -> np.ndarray:
    """Per-outcome mean of clipped log probabilities: the sufficient statistic for extremizing."""
    return _mean_log_probabilities(probabilities)


@dataclass(frozen=True)
class Aggregator:
    """A named aggregation method; ``parameters`` names what it learns from resolved questions."""

    name: str
    function: Callable[..., np.ndarray]
    description: str
    parameters: tuple[str, ...] = field(default=())

    def __call__(self, probabilities: ArrayLike, **parameters: float) -> np.ndarray:
        return self.function(probabilities, **{k: v for k, v in parameters.items() if k in self.parameters})


AGGREGATORS: dict[str, Aggregator] = {}


def register(aggregator: Aggregator) -> Aggregator:
    AGGREGATORS[aggregator.name] = aggregator
    return aggregator


register(Aggregator("mean", mean, "Arithmetic mean of the latest forecasts."))
register(Aggregator("median", median, "Median of the latest forecasts (per option, renormalised)."))
register(
    Aggregator(
        "recency_weighted_median",
        recency_weighted_median,
        "Metaculus's community prediction: median weighted by exp(sqrt(i) - sqrt(n)), newest heaviest.",
    )
)
register(Aggregator("logodds_mean", logodds_mean, "Mean log-odds of forecasts clipped to [1%, 99%]."))
register(
    Aggregator(
        "extremized_logodds",
        extremized_logodds,
        "Mean log-odds times a factor fit on questions resolved earlier.",
        parameters=("factor",),
    )
)
