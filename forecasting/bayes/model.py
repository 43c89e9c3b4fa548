"""The Bayesian model of forecasts (method ``bayes``): its constants, priors, parameter vector and data.
Pure numpy/scipy/pandas: no Django import.

The model (equations, priors, choices and the variants measured are in ``docs/bayes.md``)
------------------------------------------------------------------------------------------
Every question ``i`` has a latent probit ``l_i(f)`` (a probability's ``Phi^-1``) that moves as evidence
arrives, on a clock ``f`` = the fraction of the question's life still to run (1 at its first forecast, 0 at resolution;
for an open question the close date stands in for the resolution):

- at the first forecast ``l_i(1) ~ N(m0, s0^2)``;
- a random walk: from ``f`` to ``f' < f`` it gains ``N(0, q (f^kappa - f'^kappa))``, plus ``N(0, q_event)``
  between two consecutive forecasts (news that prompts a forecast);
- the question resolves YES exactly when the latent is positive at resolution: ``y_i = [l_i(0) > 0]``.

Forecaster ``j``'s forecast ``k`` on question ``i`` (its probability ``p`` clipped to [1%, 99%] like
``logodds_mean``, ``x = Phi^-1(p)``) is a scaled, shifted, noisy view of the latent when it was made
(Turner et al. 2014), with bias and noise that depend on the forecast's circumstances (Merkle et
al. 2016)::

    x_k = alpha_j * g(f_k) * l_i(f_k) + beta_k + eps_k,   eps_k ~ N(0, sigma_k^2)
    g(f) = sqrt((1 + eta) / (f^kappa + eta))
    beta_k = b_j + z_k . gamma_bias
    log sigma_k = s_j + z_k . gamma_noise

The loading ``g`` (1 at a question's opening) says that forecasters state informed probabilities
(Satopaa et al. 2014's partial information): a forecaster who sees the latent up to a variance
``eta q`` reports about ``l / sqrt(r + eta q)``, with ``r = q f^kappa`` the variance still to come, so
the same latent gives a more extreme forecast near resolution: a late forecast is read as an informed
one (divided by ``g``, with ``g^2`` times the precision).

``z_k`` = (opener: 1 when forecaster j made the question's first forecast,
log(1 + forecasts standing before this one), log(1 + the forecaster's earlier forecasts on the
question), log(1 + days from the forecast to resolution)): late forecasts know more, and the
latent's random walk alone (in the fraction of the question's life) does not capture how much.
Forecaster parameters are partially pooled: ``log alpha_j ~ N(0, tau_a)`` (the mean is
0 to fix the latent's scale), ``b_j ~ N(mu_b, tau_b)``, ``s_j ~ N(mu_s, tau_s)``; a forecaster with no
resolved history gets the population means.

Given the parameters the model is linear-Gaussian in the latent, so a question's forecasts are
combined exactly by a scalar Kalman filter (``BayesFit.aggregate``; no sampling):
``P(YES) = Phi(m / sqrt(v + q f_last^kappa))`` with ``N(m, v)`` the filtered latent at the last
forecast. Training uses the same filter: the likelihood of a resolved question is the filter's
prediction-error density of its forecasts times ``Phi(+-m / sqrt(...))`` of its outcome.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

MODEL_VERSION = 5  # bumped whenever the parameters change meaning: older stored fits are refitted
CLIP = (0.01, 0.99)  # the clip of ``aggregation.logodds_mean``: a 0% or 100% forecast is read as 1% / 99%
INTERVAL = 0.90
# Aggregates are kept within [0.1%, 99.9%] (as Metaculus bounds its community prediction): no
# combination of forecasts on this scale is evidence for certainty, and a log score stays finite.
OUTPUT_CLIP = (0.001, 0.999)
COVARIATES = ("opener", "log_earlier", "log_revisions", "log_days")
N_COV = len(COVARIATES)
MIN_TRAINING_QUESTIONS = 10  # below this, fit_for_evaluation uses the prior (population defaults)
FORECAST_WEIGHT = 1.0
N_VOLATILITY = 1  # Gauss-Hermite nodes over a question's volatility (1: every question alike)
N_BUCKETS = 4  # questions are grouped by forecast count into this many padded blocks for training
_F_FLOOR = 1e-9

# Global parameters, in the order of the MAP vector, with their prior (mean, sd) on the stated
# scale and their starting value. Hierarchical scales tau have a Gamma(2, 2) prior (mode 0.5):
# boundary-avoiding, so that a MAP estimate is never exactly 0.
GLOBALS = (
    # name, prior mean, prior sd, start, lower, upper
    ("mu_b", 0.0, 1.0, 0.0, -5.0, 5.0),  # mean forecaster bias (forecast scale)
    ("mu_s", 0.0, 1.0, 0.0, -4.0, 3.0),  # mean log noise sd
    ("log_tau_a", None, None, math.log(0.5), -7.0, 2.0),
    ("log_tau_b", None, None, math.log(0.5), -7.0, 2.0),
    ("log_tau_s", None, None, math.log(0.5), -7.0, 2.0),
    ("m0", 0.0, 1.5, 0.0, -8.0, 8.0),  # latent at the first forecast
    ("log_s0", math.log(1.5), 1.0, math.log(1.5), -5.0, 4.0),
    ("log_q", math.log(2.0), 1.5, math.log(2.0), -8.0, 5.0),  # variance gained over a question's life
    ("log_kappa", 0.0, 1.0, 0.0, -4.0, 3.0),  # shape of the clock
    ("log_q_event", math.log(0.1), 1.5, math.log(0.1), -12.0, 3.0),  # variance gained per forecast
    ("log_omega", math.log(0.5), 1.0, math.log(0.5), -6.0, 1.5),  # sd of a question's log volatility
    ("log_eta", 0.0, 0.75, 0.0, -7.0, 5.0),  # a forecaster's own uncertainty about the latent, relative to q
)
GLOBAL_NAMES = tuple(g[0] for g in GLOBALS)
N_GLOBALS = len(GLOBALS)
SLOPE_SD = 1.0
TAU_SHAPE, TAU_RATE = 2.0, 2.0
# No per-forecaster opener effect: a c_j shifting the bias of a forecaster's own questions scored the
# same walk-forward as none (Brier 0.0846 both; log -0.2785 with it, -0.2773 without), and its
# spread, informed by about one opening per forecaster, was the posterior's slowest direction.
FORECASTER_PARAMS = ("log_alpha", "bias", "log_sigma")
FORECASTER_BOUNDS = ((-4.0, 4.0), (-10.0, 10.0), (-5.0, 4.0))
FORECASTER_SDS = tuple(f"{name}_sd" for name in FORECASTER_PARAMS)  # posterior sd of each effect
TAU_OF = {"log_alpha": "tau_a", "bias": "tau_b", "log_sigma": "tau_s"}
INTERVAL_DRAWS = 256  # parameter draws behind an aggregate's interval


# --- data ----------------------------------------------------------------------------------------


@dataclass
class ForecastData:
    """Forecasts on yes/no questions, one row per forecast.

    ``question_index`` (m,) ints in ``range(n_questions)``; ``forecaster_key`` (m,) hashable ids;
    ``probability`` (m,) P(YES); ``seconds_to_resolution`` (m,) from the forecast to the question's
    resolution (for an open question: its close date); ``outcome`` (n_questions,) 0/1, needed to fit.

    Optional: ``life_seconds`` (n_questions,) from the question's opening to its resolution (default:
    from its oldest row); ``opener`` (m,) whether the row's forecaster made the question's first
    forecast (default: the forecaster of the question's oldest row); ``revisions`` (m,) the
    forecaster's earlier forecasts on the question (default: counted from the rows).

    Rows may include superseded forecasts: the model uses each forecaster's latest forecast per
    question (``standing``). Within a question rows are ordered by time, oldest first (the longest
    ``seconds_to_resolution``), ties in row order.
    """

    question_index: np.ndarray
    forecaster_key: Sequence[Hashable] | np.ndarray
    probability: np.ndarray
    seconds_to_resolution: np.ndarray
    outcome: np.ndarray | None = None
    life_seconds: np.ndarray | None = None
    opener: np.ndarray | None = None
    revisions: np.ndarray | None = None
    n_questions: int | None = None

    def __post_init__(self) -> None:
        self.question_index = np.asarray(self.question_index, dtype=np.int64).reshape(-1)
        m = len(self.question_index)
        keys = np.empty(m, dtype=object)
        keys[:] = [k.item() if isinstance(k, np.generic) else k for k in self.forecaster_key]
        self.forecaster_key = keys
        self.probability = np.asarray(self.probability, dtype=float).reshape(-1)
        self.seconds_to_resolution = np.maximum(np.asarray(self.seconds_to_resolution, dtype=float).reshape(-1), 0.0)
        if not (len(self.probability) == len(self.seconds_to_resolution) == m):
            raise ValueError("question_index, forecaster_key, probability and seconds_to_resolution differ in length")
        if np.any(~np.isfinite(self.probability)) or np.any((self.probability < 0) | (self.probability > 1)):
            raise ValueError("probabilities must be finite numbers in [0, 1]")
        if np.any(~np.isfinite(self.seconds_to_resolution)):
            raise ValueError("seconds_to_resolution must be finite")
        if m and self.question_index.min() < 0:
            raise ValueError("question_index must be >= 0")
        n = self.n_questions
        if n is None:
            n = max(
                int(self.question_index.max()) + 1 if m else 0, len(self.outcome) if self.outcome is not None else 0
            )
        self.n_questions = int(n)
        if m and self.question_index.max() >= self.n_questions:
            raise ValueError("question_index out of range")
        if self.outcome is not None:
            self.outcome = np.asarray(self.outcome, dtype=np.int64).reshape(-1)
            if len(self.outcome) != self.n_questions or np.any((self.outcome != 0) & (self.outcome != 1)):
                raise ValueError("outcome must hold one 0/1 value per question")
        longest = np.zeros(self.n_questions)
        np.maximum.at(longest, self.question_index, self.seconds_to_resolution)
        if self.life_seconds is None:
            self.life_seconds = longest
        else:
            self.life_seconds = np.maximum(np.asarray(self.life_seconds, dtype=float).reshape(-1), longest)
        if self.opener is not None:
            self.opener = np.asarray(self.opener, dtype=bool).reshape(-1)
        if self.revisions is not None:
            self.revisions = np.asarray(self.revisions, dtype=float).reshape(-1)

    @property
    def n_forecasts(self) -> int:
        return len(self.question_index)

    def ordered(self) -> np.ndarray:
        """Row order: by question, then oldest to newest (ties in row order)."""
        return np.lexsort((np.arange(self.n_forecasts), -self.seconds_to_resolution, self.question_index))

    def standing(self) -> ForecastData:
        """Each forecaster's latest forecast per question, ordered, with ``opener`` and ``revisions``."""
        order = self.ordered()
        q = self.question_index[order]
        keys = self.forecaster_key[order]
        codes = key_codes(keys)
        # A (question, forecaster) pair's rows are consecutive once sorted by pair, oldest first.
        pair = q * (int(codes.max()) + 1 if len(codes) else 1) + codes
        by_pair = np.lexsort((np.arange(len(pair)), pair))
        sorted_pair = pair[by_pair]
        is_last = np.r_[sorted_pair[1:] != sorted_pair[:-1], True] if len(pair) else np.zeros(0, bool)
        latest = np.sort(by_pair[is_last])
        if self.revisions is not None:
            revisions = self.revisions[order][latest]
        else:
            _, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
            revisions = (counts[inverse] - 1)[latest].astype(float)
        if self.opener is not None:
            opener = self.opener[order][latest]
        else:
            first = np.r_[True, q[1:] != q[:-1]] if len(q) else np.zeros(0, bool)
            first_code = np.full(self.n_questions, -1, dtype=np.int64)
            first_code[q[first]] = codes[first]
            opener = codes[latest] == first_code[q[latest]]
        return ForecastData(
            question_index=q[latest],
            forecaster_key=keys[latest],
            probability=self.probability[order][latest],
            seconds_to_resolution=self.seconds_to_resolution[order][latest],
            outcome=self.outcome,
            life_seconds=self.life_seconds,
            opener=opener,
            revisions=revisions,
            n_questions=self.n_questions,
        )


def key_codes(keys: np.ndarray, with_keys: bool = False):
    """Integer codes of forecaster keys, numbered in order of first appearance (and the keys)."""
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    codes = codes.astype(np.int64)
    return (codes, uniques.tolist()) if with_keys else codes


def life_fraction(seconds_to_resolution: np.ndarray, life_seconds: np.ndarray | float) -> np.ndarray:
    life = np.maximum(np.asarray(life_seconds, dtype=float), 1.0)
    return np.clip(np.asarray(seconds_to_resolution, dtype=float) / life, _F_FLOOR, 1.0)


def covariates(
    opener: np.ndarray, earlier: np.ndarray, revisions: np.ndarray, clock: np.ndarray, seconds: np.ndarray
) -> np.ndarray:
    """The forecast-level covariates ``z`` (columns in ``COVARIATES`` order; ``opener`` first)."""
    columns = {
        "opener": lambda: opener.astype(float),
        "log_earlier": lambda: np.log1p(earlier),
        "log_revisions": lambda: np.log1p(np.maximum(revisions, 0.0)),
        "log_clock": lambda: np.log(np.maximum(clock, 1e-4)),
        "log_days": lambda: np.log1p(seconds / 86400.0),
    }
    return np.column_stack([columns[name]() for name in COVARIATES]).reshape(len(opener), len(COVARIATES))


def to_scale(probability: np.ndarray) -> np.ndarray:
    """The model's scale: the probit ``Phi^-1(p)`` of the clipped probability (Turner et al. 2014).

    Measured walk-forward (docs/bayes.md): probit and log-odds score alike with a 1% clip, but on the
    log-odds scale the score depends on the clip (a 0.5% clip: Brier 0.0949 against 0.0849 on the
    probit scale), because the log-odds stretch the extremes where a Gaussian error fits worst."""
    return ndtri(np.clip(np.asarray(probability, dtype=float), *CLIP))


def scale_to_probability(x: np.ndarray) -> np.ndarray:
    """The inverse of the model's scale: ``Phi(x)``."""
    return ndtr(np.asarray(x, dtype=float))


def clock_power_at(pop: dict, f) -> np.ndarray | float:
    """``f^kappa``: the share of the latent's variance over a question's life still to come at ``f``."""
    return np.power(np.maximum(f, _F_FLOOR), pop["kappa"])


def loading(eta, clock_power):
    """How strongly a forecast reads the latent, ``sqrt((1 + eta) / (f^kappa + eta))`` given
    ``clock_power = f^kappa`` (numpy or pytensor): 1 at a question's opening, larger near its
    resolution, where the same latent means a more certain informed forecaster."""
    return ((1.0 + eta) / (clock_power + eta)) ** 0.5


def volatility_nodes(pop: dict) -> tuple[np.ndarray, np.ndarray]:
    """Question volatility multipliers ``exp(omega xi_k)`` and log weights (Gauss-Hermite on xi ~ N(0, 1))."""
    nodes, weights = gauss_hermite(N_VOLATILITY)
    return np.exp(pop.get("omega", 0.0) * nodes), np.log(weights)


@functools.cache
def gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    if k == 1:
        return np.zeros(1), np.ones(1)
    x, w = np.polynomial.hermite.hermgauss(k)
    return x * math.sqrt(2.0), w / math.sqrt(math.pi)


# --- the parameter vector (the MAP's order) --------------------------------------------------------


def default_population() -> dict[str, Any]:
    """Population parameters at their prior centres: what ``fit`` starts from (and a fit on nothing)."""
    return population_from_vector(np.array([g[3] for g in GLOBALS] + [0.0] * (2 * N_COV)))


def population_from_vector(theta: np.ndarray) -> dict[str, Any]:
    gv = dict(zip(GLOBAL_NAMES, (float(v) for v in theta[:N_GLOBALS]), strict=True))
    return {
        "mu_b": gv["mu_b"],
        "mu_s": gv["mu_s"],
        "tau_a": math.exp(gv["log_tau_a"]),
        "tau_b": math.exp(gv["log_tau_b"]),
        "tau_s": math.exp(gv["log_tau_s"]),
        "m0": gv["m0"],
        "s0": math.exp(gv["log_s0"]),
        "q": math.exp(gv["log_q"]),
        "kappa": math.exp(gv["log_kappa"]),
        "q_event": math.exp(gv["log_q_event"]),
        "omega": math.exp(gv["log_omega"]),
        "eta": math.exp(gv["log_eta"]),
        "gamma_bias": [float(v) for v in theta[N_GLOBALS : N_GLOBALS + N_COV]],
        "gamma_noise": [float(v) for v in theta[N_GLOBALS + N_COV : N_GLOBALS + 2 * N_COV]],
        "covariates": list(COVARIATES),
    }


def vector_from_population(pop: dict) -> np.ndarray:
    logs = {
        "log_tau_a": "tau_a",
        "log_tau_b": "tau_b",
        "log_tau_s": "tau_s",
        "log_s0": "s0",
        "log_q": "q",
        "log_kappa": "kappa",
        "log_q_event": "q_event",
        "log_omega": "omega",
        "log_eta": "eta",
    }
    values = [math.log(pop[logs[n]]) if n in logs else pop[n] for n in GLOBAL_NAMES]
    return np.array(values + list(pop["gamma_bias"]) + list(pop["gamma_noise"]), dtype=float)


def warm_up_data() -> ForecastData:
    """A tiny resolved data set (4 forecasters, 3 forecasts on each of 10 questions) for warm-ups."""
    rng = np.random.default_rng(0)
    n_questions, per_question = MIN_TRAINING_QUESTIONS, 3
    q = np.repeat(np.arange(n_questions), per_question)
    return ForecastData(
        question_index=q,
        forecaster_key=[f"warm-up-{i % 4}" for i in range(len(q))],
        probability=rng.uniform(0.1, 0.9, size=len(q)),
        seconds_to_resolution=np.tile([3.0, 2.0, 1.0], n_questions) * 86400.0,
        outcome=rng.integers(0, 2, size=n_questions),
    )
