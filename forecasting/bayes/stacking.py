"""How far to trust the model: the shown Bayesian aggregate stacks the model's probability with the
log-odds mean's, with weights learnt from the record. Pure numpy: no Django import.

    logit P = trust * (logit(p_model) - logit(p_pool)) + scale * logit(p_pool)

plus, where the question has a market, ``market * (logit(p_market) - logit(p_pool))``: the market
price is one more informed source with its own learnt reliability (0 until its record earns some).
``trust`` is how far the aggregate moves from the log-odds mean towards the model (0: not at all, 1:
all the way); ``scale`` extremizes (above 1) or tempers the result. Both are the posterior mode of a
logistic regression (no intercept) of past outcomes on the two methods' *out-of-sample* aggregates
(each taken when its question closed, with the fit of that time), under the priors
``trust ~ N(0, TRUST_SD^2)`` and ``scale ~ N(1, SCALE_SD^2)``. With nothing learnt the stack is
exactly the log-odds mean; it moves towards the model only as far as the model's own record
supports. Why: with little history the model's fit is mostly its prior, and then it pulls a
confident crowd towards 50% (docs/bayes.md, "Right from the first question").

The priors: extremizing a crowd's log-odds mean helps on some published crowds (factors of 1.2 to
2.5 on Good Judgment Project questions: Baron, Mellers, Tetlock et al. 2014, "Two reasons to make
aggregated probability forecasts more extreme"; Satopaa et al. 2014) and hurts on others (the
Metaculus pros dev set here), so the scale needs a long record to move (sd 0.05). The trust's sd
(0.3) was chosen walk-forward among 0.1 to 2 on the two dev sets' prefixes (docs/bayes.md): smaller
is slower to learn from a long record, larger follows a short record's noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit

from .model import OUTPUT_CLIP

# (trust, scale, market): the log-odds mean until the record says otherwise
PRIOR_MEAN = (0.0, 1.0, 0.0)
TRUST_SD = 0.3
SCALE_SD = 0.05
MARKET_SD = 0.3  # a market is one more informed source: no trust until its record earns some
INPUT_CLIP = (0.001, 0.999)
INTERVAL_DRAWS = 512
_PRIOR_SDS = (TRUST_SD, SCALE_SD, MARKET_SD)
_PRIOR_COVARIANCE = tuple(tuple(sd**2 if i == j else 0.0 for j in range(3)) for i, sd in enumerate(_PRIOR_SDS))
_MAX_NEWTON_STEPS = 50
_TOLERANCE = 1e-10
_Z90 = 1.6448536269514722  # the standard normal's 95th percentile


def _design(probabilities: np.ndarray) -> np.ndarray:
    """(n, 3) inputs ``(p_model, p_pool, p_market)`` -- ``p_market`` NaN where there is no market --
    as the regression's columns: the model's and the market's logits less the pool's, the pool's."""
    p = np.asarray(probabilities, dtype=float)
    if p.shape[1] == 2:
        p = np.column_stack([p, np.full(len(p), np.nan)])
    x = logit(np.clip(p, *INPUT_CLIP))
    market = np.where(np.isnan(x[:, 2]), 0.0, x[:, 2] - x[:, 1])
    return np.column_stack([x[:, 0] - x[:, 1], x[:, 1], market])


def _row(probabilities: ArrayLike) -> np.ndarray:
    values = [np.nan if v is None else float(v) for v in np.ravel(np.asarray(probabilities, dtype=object))]
    return np.array(values + [np.nan] * (3 - len(values)), dtype=float).reshape(1, 3)


@dataclass(frozen=True)
class StackWeights:
    """The weights (trust, scale, market), their posterior covariance (Laplace) and how many resolved
    questions they were learnt from (``n_market``: how many of them had a market)."""

    weights: tuple[float, ...] = PRIOR_MEAN
    covariance: tuple[tuple[float, ...], ...] = _PRIOR_COVARIANCE
    n_questions: int = 0
    n_market: int = 0

    def combine(self, probabilities: ArrayLike) -> float:
        """P(YES) of the stack given ``(p_model, p_pool)`` or ``(p_model, p_pool, p_market)`` (a
        market price of None: no market)."""
        x = _design(_row(probabilities))[0]
        return float(np.clip(expit(float(np.dot(self.weights, x))), *OUTPUT_CLIP))

    def interval(
        self, model: tuple[float, float, float], pool: float, market: float | None = None, level: float = 0.90
    ) -> tuple[float, float]:
        """The central ``level`` interval of the stack's P(YES) over the uncertainty in the weights (how
        far to trust the model and the market: wide with little record) and in the model's own value
        (its interval ``model = (p, low, high)``, read as a normal on the logit scale). Fixed draws:
        the same inputs always give the same interval."""
        p, low, high = (logit(np.clip(v, *INPUT_CLIP)) for v in model)
        model_sd = max(high - low, 0.0) / (2 * _Z90)
        rng = np.random.default_rng(20261205)
        weights = rng.multivariate_normal(self.weights, np.asarray(self.covariance), size=INTERVAL_DRAWS)
        x_model = p + model_sd * rng.standard_normal(INTERVAL_DRAWS)
        x_pool = logit(np.clip(pool, *INPUT_CLIP))
        x_market = 0.0 if market is None else logit(np.clip(market, *INPUT_CLIP)) - x_pool
        draws = expit(weights[:, 0] * (x_model - x_pool) + weights[:, 1] * x_pool + weights[:, 2] * x_market)
        tail = (1 - level) / 2
        lo, hi = np.quantile(draws, [tail, 1 - tail])
        return float(np.clip(lo, *OUTPUT_CLIP)), float(np.clip(hi, *OUTPUT_CLIP))

    def as_dict(self) -> dict:
        return {
            "weights": list(self.weights),
            "covariance": [list(row) for row in self.covariance],
            "n_questions": self.n_questions,
            "n_market": self.n_market,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> StackWeights:
        """The weights stored by ``as_dict``; the prior's when there are none (an older two-weight
        stack reads as one that never learnt from a market)."""
        if not data or "weights" not in data:
            return cls()
        weights = [float(w) for w in data["weights"]]
        covariance = [list(map(float, row)) for row in (data.get("covariance") or _PRIOR_COVARIANCE)]
        while len(weights) < 3:
            covariance = [[*row, 0.0] for row in covariance] + [[0.0] * len(weights) + [MARKET_SD**2]]
            weights.append(PRIOR_MEAN[len(weights)])
        return cls(
            weights=tuple(weights),
            covariance=tuple(tuple(row) for row in covariance),
            n_questions=int(data.get("n_questions", 0)),
            n_market=int(data.get("n_market", 0)),
        )


def _objective(w, x, y, mean, precision):
    z = x @ w
    # -log likelihood of a logistic regression, computed stably: log(1 + e^z) - y z
    nll = float(np.sum(np.logaddexp(0.0, z) - y * z))
    return nll + 0.5 * float(np.sum(precision * (w - mean) ** 2))


def fit_stack(
    probabilities: ArrayLike,
    outcomes: ArrayLike,
    *,
    trust_sd: float = TRUST_SD,
    scale_sd: float = SCALE_SD,
    market_sd: float = MARKET_SD,
) -> StackWeights:
    """The posterior mode of (trust, scale, market): ``probabilities`` is (n questions, 2 or 3) of
    out-of-sample ``(p_model, p_pool[, p_market])`` (``p_market`` NaN where there was no market),
    ``outcomes`` (n,) 0/1. Newton's method with step halving (the objective is convex)."""
    mean = np.asarray(PRIOR_MEAN, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2:  # an empty or flat input: rows of (p_model, p_pool)
        p = p.reshape(-1, 2)
    x = _design(p)
    y = np.asarray(outcomes, dtype=float)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} rows of probabilities but {y.shape[0]} outcomes")
    if min(trust_sd, scale_sd, market_sd) <= 0:
        raise ValueError("the prior sds must be positive")
    precision = np.array([1.0 / trust_sd**2, 1.0 / scale_sd**2, 1.0 / market_sd**2])
    w = mean.copy()
    value = _objective(w, x, y, mean, precision)
    for _ in range(_MAX_NEWTON_STEPS):
        q = expit(x @ w)
        gradient = x.T @ (q - y) + precision * (w - mean)
        hessian = (x * (q * (1 - q))[:, None]).T @ x + np.diag(precision)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        candidate = w - step
        new_value = _objective(candidate, x, y, mean, precision)
        while new_value > value and scale > 1e-8:
            scale /= 2
            candidate = w - scale * step
            new_value = _objective(candidate, x, y, mean, precision)
        if new_value > value:
            break  # no descent left: w is the mode to rounding
        improvement = value - new_value
        w, value = candidate, new_value
        if improvement < _TOLERANCE:
            break
    q = expit(x @ w)
    covariance = np.linalg.inv((x * (q * (1 - q))[:, None]).T @ x + np.diag(precision))  # Laplace
    return StackWeights(
        weights=tuple(float(v) for v in w),
        covariance=tuple(tuple(float(v) for v in row) for row in covariance),
        n_questions=len(y),
        n_market=int(np.count_nonzero(x[:, 2])) if len(y) else 0,
    )
