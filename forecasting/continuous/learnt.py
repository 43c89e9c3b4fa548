"""The learnt aggregate of continuous forecasts (``learnt_pool``): a skill-weighted linear pool of the CDFs,
recalibrated in dispersion. Pure numpy/scipy: no Django import.

Two things are learnt from resolved questions, each shrunk towards "nothing learnt", where the method is
the plain linear pool (the mean of the CDFs):

- **Skill weights.** On every resolved question, each forecaster's CRPS is compared with the question's
  other forecasters by its *relative log CRPS* ``ln CRPS_i - mean_j ln CRPS_j`` (scale-free: a hard
  question does not count more than an easy one). A forecaster's record ``r`` is the sum of these over
  their questions divided by ``questions + SHRINK_QUESTIONS`` (as if they had ``SHRINK_QUESTIONS`` more
  questions at the average), and their weight in the pool is ``exp(-SKILL_POWER * r)``, i.e. their
  (shrunk) geometric-mean CRPS relative to their peers to the power ``-SKILL_POWER``. With
  ``SKILL_POWER = 2`` this is inverse-variance weighting (a CRPS scales like a standard deviation of the
  forecast error). A newcomer, or anyone when nothing has resolved, has weight 1.
- **Dispersion.** A linear pool of forecasters who disagree is wider than any of them, and a crowd of
  over-confident forecasters may still be too narrow. The pool ``F`` is recalibrated by extremizing
  every threshold event "X <= u" by one factor ``a`` in log-odds: ``logit G(u) = a logit F(u)``
  (``extremize_cdf``; the yes/no ``extremized_logodds`` applied to each point of the CDF). ``a > 1``
  narrows the distribution around its median (which stays), ``a < 1`` widens it, mass beyond an open
  bound moves consistently and a closed bound stays closed. ``a`` minimises the mean CRPS of the
  recalibrated pools of the resolved questions, each pool as it was aggregated *out of sample* (with the
  skill weights known at that question's end), and is then shrunk towards 1 on the log scale by
  ``m / (m + DISPERSION_PRIOR_QUESTIONS)`` for m questions: a prior worth that many questions at 1.

The result is passed through ``forecasting.continuous.build.standardise`` so it is a valid CDF (a minimal
uniform mix where extremizing thinned a tail below Metaculus's minimum density; a valid CDF is unchanged).
The constants were set a priori (shrinkage as ``skill_weighted.SHRINK_QUESTIONS``), not fitted to a data set.

``LearntPool`` is the method walk-forward: ``aggregate`` a question at its end with what is known, ``learn``
questions as they resolve. The causal evaluation (``forecasting.evaluation.numeric``) drives it question by
question; the product (``services.aggregator_fits_refresh``) replays the resolved questions through it and
stores each forecaster's ``record`` and the ``factor``, which ``pool_weights`` and ``learnt_pool`` read.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

from . import aggregation as continuous_aggregation
from . import scoring as continuous_scoring
from .build import standardise
from .grid import BUCKETS, Scale
from .scoring import UNIT_GRID

SHRINK_QUESTIONS = 5.0  # a skill record counts as this many extra questions at the average
SKILL_POWER = 2.0  # weight = (relative geometric-mean CRPS) ** -SKILL_POWER: inverse-variance weighting
DISPERSION_PRIOR_QUESTIONS = 5.0  # the dispersion factor's prior at 1 is worth this many questions
FACTOR_BOUNDS = (0.25, 4.0)  # the dispersion factor is searched in this range
CRPS_FLOOR = 1e-6  # a CRPS below this (a near-perfect step at the outcome) counts as this, for the logarithm


class ResolvedQuestion(Protocol):
    """What the learner reads of a question (``numeric.NumericQuestion`` has it)."""

    question_id: str
    scale: Scale
    position: float  # the outcome's unit position
    forecaster_ids: np.ndarray  # (n,)
    cdfs: np.ndarray  # (n, 201), each forecaster's latest CDF


def relative_log_crps(crps_values: ArrayLike) -> np.ndarray:
    """``ln CRPS_i - mean_j ln CRPS_j`` of one question's forecasters (0 for a lone forecaster)."""
    logs = np.log(np.maximum(np.asarray(crps_values, dtype=float), CRPS_FLOOR))
    return logs - logs.mean() if len(logs) else logs


class SkillRecords:
    """Each forecaster's summed relative log CRPS on resolved questions, and the pool weights they give."""

    def __init__(self) -> None:
        self._sum: dict[Hashable, float] = {}
        self._count: dict[Hashable, int] = {}

    def add(self, forecaster_ids: Sequence[Hashable], crps_values: ArrayLike) -> None:
        """Records one resolved question: its forecasters and their CRPS."""
        for forecaster, value in zip(forecaster_ids, relative_log_crps(crps_values), strict=True):
            self._sum[forecaster] = self._sum.get(forecaster, 0.0) + float(value)
            self._count[forecaster] = self._count.get(forecaster, 0) + 1

    def record(self, forecaster_ids: Iterable[Hashable]) -> np.ndarray:
        """Each forecaster's shrunk mean relative log CRPS (0: average, or unknown; negative: better)."""
        return np.array(
            [self._sum.get(f, 0.0) / (self._count.get(f, 0) + SHRINK_QUESTIONS) for f in forecaster_ids], dtype=float
        )

    def weights(self, forecaster_ids: Iterable[Hashable]) -> np.ndarray:
        """Pool weights, normalised to sum to 1 (equal when nothing is known)."""
        return pool_weights(self.record(forecaster_ids))

    def known(self) -> dict[Hashable, float]:
        """Every forecaster with a record, and their record (``record``)."""
        return {f: self._sum[f] / (self._count[f] + SHRINK_QUESTIONS) for f in self._sum}


def pool_weights(records: ArrayLike) -> np.ndarray:
    """Pool weights from forecasters' records (``SkillRecords.record``; 0 for a newcomer), summing to 1."""
    log_w = -SKILL_POWER * np.asarray(records, dtype=float)
    if len(log_w) == 0:
        return log_w
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def extremize_cdf(cdf: ArrayLike, factor: float) -> np.ndarray:
    """``expit(factor * logit F)`` at every point (rows of an ``(n, 201)`` array too): the median stays,
    ``factor > 1`` narrows, ``factor < 1`` widens; 0 and 1 stay where they are."""
    values = np.clip(np.asarray(cdf, dtype=float), 0.0, 1.0)
    if factor == 1.0:
        return values
    with np.errstate(divide="ignore", over="ignore"):
        return expit(factor * logit(values))


def crps_rows(cdfs: ArrayLike, positions: ArrayLike) -> np.ndarray:
    """The CRPS of each row of ``(m, 201)`` at its own outcome position (``continuous.scoring.crps``'s rule:
    position clipped to [0, 1], trapezoid rule over the grid)."""
    values = np.atleast_2d(np.asarray(cdfs, dtype=float))
    y = np.clip(np.asarray(positions, dtype=float), 0.0, 1.0)
    steps = (UNIT_GRID[None, :] >= y[:, None]).astype(float)
    return np.trapezoid((values - steps) ** 2, dx=1.0 / BUCKETS, axis=1)


def fit_dispersion(pools: ArrayLike, positions: ArrayLike) -> float:
    """The dispersion factor learnt from resolved questions' out-of-sample pools ``(m, 201)`` and outcome
    positions: the mean-CRPS minimiser in ``FACTOR_BOUNDS``, shrunk towards 1 (1 when m = 0)."""
    values = np.asarray(pools, dtype=float).reshape(-1, len(UNIT_GRID))
    y = np.asarray(positions, dtype=float)
    m = len(values)
    if m == 0:
        return 1.0

    def loss(log_factor: float) -> float:
        return float(crps_rows(extremize_cdf(values, math.exp(log_factor)), y).mean())

    low, high = (math.log(b) for b in FACTOR_BOUNDS)
    best = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-4}).x
    return float(math.exp(m / (m + DISPERSION_PRIOR_QUESTIONS) * best))


def learnt_pool(cdfs: ArrayLike, scale: Scale, *, weights: ArrayLike | None = None, factor: float = 1.0) -> np.ndarray:
    """The skill-weighted linear pool of the CDFs (rows: forecasters), extremized by ``factor`` and made valid.

    With equal weights and ``factor`` 1 it is the linear pool (made valid, i.e. unchanged for valid forecasts).
    """
    pooled = continuous_aggregation.linear_pool(cdfs, weights)
    return standardise(extremize_cdf(pooled, factor), scale)


class LearntPool:
    """``learnt_pool`` walk-forward: ``aggregate`` takes a question as it stood at its end with the records
    and the factor learnt so far; ``learn`` adds resolved questions and refits the factor. A question's
    out-of-sample pool is remembered when it is aggregated, and is what the factor later learns from."""

    def __init__(self) -> None:
        self.records = SkillRecords()
        self.factor = 1.0
        self._pools: dict[str, np.ndarray] = {}
        self._learnt_pools: list[np.ndarray] = []
        self._learnt_positions: list[float] = []

    def _pool(self, question: ResolvedQuestion) -> np.ndarray:
        return continuous_aggregation.linear_pool(question.cdfs, self.records.weights(question.forecaster_ids))

    def aggregate(self, question: ResolvedQuestion) -> np.ndarray:
        pooled = self._pool(question)
        self._pools[question.question_id] = pooled
        return standardise(extremize_cdf(pooled, self.factor), question.scale)

    def learn(self, resolved: Sequence[ResolvedQuestion]) -> None:
        # a question never aggregated gets its pool now, before its own outcome enters the records
        pools = [self._pools.pop(q.question_id, None) for q in resolved]
        pools = [self._pool(q) if p is None else p for q, p in zip(resolved, pools, strict=True)]
        for question, pooled in zip(resolved, pools, strict=True):
            self.records.add(list(question.forecaster_ids), continuous_scoring.crps(question.cdfs, question.position))
            self._learnt_pools.append(pooled)
            self._learnt_positions.append(question.position)
        if resolved:
            self.factor = fit_dispersion(np.array(self._learnt_pools), np.array(self._learnt_positions))
