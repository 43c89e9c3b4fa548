"""The skill-weighted log-odds mean: the benchmark's strong simple method. Pure numpy/scipy.

Issue 4 describes it as "a hand-made weighting of log-odds by recency, by each forecaster's past
Brier and by closeness to resolution, extremized". Each forecaster's latest forecast ``p_k``
(clipped to [1%, 99%]) counts in the log-odds mean with the weight

    w_k = 2^(-age_k / half_life) * (1 + days_to_resolution_k)^(-closeness) * brier_j^(-skill)

and the mean is multiplied by an extremizing ``factor``. ``age_k`` is the days from the forecast
to the newest forecast on the question (the moment the aggregate is for). ``brier_j`` is the
forecaster's track record: their mean Brier score on earlier resolved questions, shrunk towards
the mean of every forecast so far as if they had ``SHRINK_QUESTIONS`` more questions at that
mean. A newcomer's record is that mean, so a newcomer is weighted like an average forecaster.

The four numbers are fitted by log loss on resolved questions (``fit_weighting``). In the
evaluation each training question is weighted with the records as they stood before it resolved
(``TrackRecords``, walk-forward), the way the method meets an open question.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize

CLIP = (0.01, 0.99)
SHRINK_QUESTIONS = 5.0  # a record counts as this many extra questions at the population's mean Brier
DEFAULT_BRIER = 0.25  # the population's mean before anything has resolved (a 50% forecast)
_MIN_BRIER = (CLIP[0]) ** 2  # the best record possible: every forecast at the clip and right
_BOUNDS = ((-3.0, 10.0), (-1.0, 2.0), (-1.0, 4.0), (math.log(0.5), math.log(4.0)))  # see _as_vector


@dataclass(frozen=True)
class Weighting:
    """The fitted weighting; the defaults are the plain log-odds mean."""

    half_life_days: float = math.inf
    closeness: float = 0.0
    skill: float = 0.0
    factor: float = 1.0


def _as_vector(weighting: Weighting) -> np.ndarray:
    # an infinite half-life (no recency weighting) stays infinite: exp(inf) in _log_weights
    w = weighting
    return np.array([math.log(w.half_life_days), w.closeness, w.skill, math.log(w.factor)])


def _from_vector(v: np.ndarray) -> Weighting:
    return Weighting(
        half_life_days=float(math.exp(v[0])), closeness=float(v[1]), skill=float(v[2]), factor=float(math.exp(v[3]))
    )


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), *CLIP)
    return np.log(p) - np.log1p(-p)


def _log_weights(v: np.ndarray, age_days, days_to_resolution, brier) -> np.ndarray:
    return (
        -np.asarray(age_days) * math.log(2.0) / np.exp(v[0])
        - v[1] * np.log1p(np.asarray(days_to_resolution))
        - v[2] * np.log(np.maximum(np.asarray(brier), _MIN_BRIER))
    )


def combine(
    probabilities_yes: ArrayLike,
    age_days: ArrayLike,
    days_to_resolution: ArrayLike,
    brier: ArrayLike,
    weighting: Weighting,
) -> float:
    """P(YES) of one question from its forecasters' latest forecasts (arrays of equal length)."""
    x = _logit(probabilities_yes)
    if len(x) == 0:
        return 0.5
    v = _as_vector(weighting)
    log_w = _log_weights(v, np.maximum(age_days, 0.0), np.maximum(days_to_resolution, 0.0), brier)
    w = np.exp(log_w - log_w.max())
    mean = float(np.dot(w, x) / w.sum())
    return float(1.0 / (1.0 + math.exp(-weighting.factor * mean)))


def fit_weighting(
    questions: Sequence[dict[str, np.ndarray]], outcomes: Sequence[int], *, start: Weighting | None = None
) -> Weighting:
    """The weighting that minimises the log loss of ``combine`` on resolved questions.

    ``questions[i]`` holds arrays ``p`` (P(YES)), ``age_days``, ``days_to_resolution`` and ``brier``
    (each forecaster's record when the question was aggregated); ``outcomes[i]`` is 0 or 1."""
    keep = [i for i, q in enumerate(questions) if len(q["p"])]  # a question without forecasts says nothing
    questions, outcomes = [questions[i] for i in keep], [outcomes[i] for i in keep]
    sizes = np.array([len(q["p"]) for q in questions], dtype=np.int64)
    if len(questions) == 0:
        return Weighting()
    index = np.repeat(np.arange(len(questions)), sizes)
    x = _logit(np.concatenate([q["p"] for q in questions]))
    age = np.maximum(np.concatenate([q["age_days"] for q in questions]), 0.0)
    days = np.maximum(np.concatenate([q["days_to_resolution"] for q in questions]), 0.0)
    brier = np.concatenate([q["brier"] for q in questions])
    sign = 2.0 * np.asarray(outcomes, dtype=float) - 1.0
    n = len(questions)

    def loss(v: np.ndarray) -> float:
        log_w = _log_weights(v, age, days, brier)
        top = np.full(n, -np.inf)
        np.maximum.at(top, index, log_w)
        w = np.exp(log_w - top[index])
        mean = np.bincount(index, weights=w * x, minlength=n) / np.bincount(index, weights=w, minlength=n)
        margin = sign * math.exp(v[3]) * mean
        return float(np.mean(np.logaddexp(0.0, -margin)))  # -log sigmoid(margin)

    v0 = _as_vector(start or Weighting(half_life_days=365.0))
    if not math.isfinite(loss(np.clip(v0, *np.array(_BOUNDS).T))):
        raise ValueError("the weighting's loss is not finite at its start: check the inputs")
    result = minimize(loss, v0, method="L-BFGS-B", bounds=_BOUNDS)
    return _from_vector(result.x)


class TrackRecords:
    """Each forecaster's Brier scores on resolved questions, shrunk towards the population's mean."""

    def __init__(self) -> None:
        self._sum: dict[Hashable, float] = {}
        self._count: dict[Hashable, int] = {}
        self._total = 0.0
        self._n = 0

    def population_brier(self) -> float:
        return self._total / self._n if self._n else DEFAULT_BRIER

    def brier(self, forecasters: Iterable[Hashable]) -> np.ndarray:
        """The shrunk mean Brier of each forecaster (a newcomer: the population's mean)."""
        prior = self.population_brier()
        return np.array(
            [
                (self._sum.get(f, 0.0) + SHRINK_QUESTIONS * prior) / (self._count.get(f, 0) + SHRINK_QUESTIONS)
                for f in forecasters
            ],
            dtype=float,
        )

    def add(self, forecasters: Sequence[Hashable], probabilities_yes: ArrayLike, outcome: int) -> None:
        """Records one resolved question: each forecaster's (latest) forecast and the outcome."""
        # scored as ``combine`` reads them (clipped): a 100% forecast that came true scores 1e-4, not 0
        scores = (np.clip(np.asarray(probabilities_yes, dtype=float), *CLIP) - float(outcome)) ** 2
        for f, s in zip(forecasters, scores, strict=True):
            self._sum[f] = self._sum.get(f, 0.0) + float(s)
            self._count[f] = self._count.get(f, 0) + 1
        self._total += float(scores.sum())
        self._n += len(scores)
