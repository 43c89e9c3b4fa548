"""Bayesian aggregation of forecasts (method ``bayes``). Pure numpy/scipy/pytensor/PyMC: no Django import.

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

Fits: ``fit(data, method="map")`` maximises the posterior with L-BFGS on pytensor gradients (the
hierarchical variances through a Laplace approximation of the forecaster effects, so that they do
not collapse to 0); ``method="nuts"`` samples the full posterior with PyMC (nutpie when it is
installed) and reports arviz diagnostics. Both give a JSON-serialisable ``BayesFit``.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import ndtr, ndtri

MODEL_VERSION = 5  # bumped whenever the parameters change meaning: older stored fits are refitted
CLIP = (0.01, 0.99)  # the clip of ``aggregation.logodds_mean``: a 0% or 100% forecast is read as 1% / 99%
INTERVAL = 0.90
# Aggregates are kept within [0.1%, 99.9%] (as Metaculus bounds its community prediction): no
# combination of forecasts on this scale is evidence for certainty, and a log score stays finite.
OUTPUT_CLIP = (0.001, 0.999)
_Z = 1.6448536269514722  # standard normal 95% quantile
COVARIATES = ("opener", "log_earlier", "log_revisions", "log_days")
N_COV = len(COVARIATES)
MIN_TRAINING_QUESTIONS = 10  # below this, fit_for_evaluation uses the prior (population defaults)
FORECAST_WEIGHT = 1.0
N_VOLATILITY = 1  # Gauss-Hermite nodes over a question's volatility (1: every question alike)
N_BUCKETS = 4  # questions are grouped by forecast count into this many padded blocks for training
_STEP_COST = 600.0  # relative cost of a filter step vs one padded element, for choosing the blocks
_F_FLOOR = 1e-9

# Global parameters, in the order of the MAP vector, with their prior (mean, sd) on the stated
# scale and their starting value. Hierarchical scales tau have a Gamma(2, 2) prior (mode 0.5):
# boundary-avoiding, so that a MAP estimate is never exactly 0.
_GLOBALS = (
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
_GLOBAL_NAMES = tuple(g[0] for g in _GLOBALS)
_NG = len(_GLOBALS)
_SLOPE_SD = 1.0
_TAU_SHAPE, _TAU_RATE = 2.0, 2.0
# No per-forecaster opener effect: a c_j shifting the bias of a forecaster's own questions scored the
# same walk-forward as none (Brier 0.0846 both; log -0.2785 with it, -0.2773 without), and its
# spread, informed by about one opening per forecaster, was the posterior's slowest direction.
_FORECASTER_PARAMS = ("log_alpha", "bias", "log_sigma")
_FORECASTER_BOUNDS = ((-4.0, 4.0), (-10.0, 10.0), (-5.0, 4.0))
_FORECASTER_SDS = tuple(f"{name}_sd" for name in _FORECASTER_PARAMS)  # posterior sd of each effect
_TAU_OF = {"log_alpha": "tau_a", "bias": "tau_b", "log_sigma": "tau_s"}
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
        codes = _key_codes(keys)
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


def _key_codes(keys: np.ndarray, with_keys: bool = False):
    """Integer codes of forecaster keys, numbered in order of first appearance (and the keys)."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    codes = codes.astype(np.int64)
    return (codes, uniques.tolist()) if with_keys else codes


def _clock(seconds_to_resolution: np.ndarray, life_seconds: np.ndarray | float) -> np.ndarray:
    life = np.maximum(np.asarray(life_seconds, dtype=float), 1.0)
    return np.clip(np.asarray(seconds_to_resolution, dtype=float) / life, _F_FLOOR, 1.0)


def _covariates(
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


def _to_scale(probability: np.ndarray) -> np.ndarray:
    """The model's scale: the probit ``Phi^-1(p)`` of the clipped probability (Turner et al. 2014).

    Measured walk-forward (docs/bayes.md): probit and log-odds score alike with a 1% clip, but on the
    log-odds scale the score depends on the clip (a 0.5% clip: Brier 0.0949 against 0.0849 on the
    probit scale), because the log-odds stretch the extremes where a Gaussian error fits worst."""
    return ndtri(np.clip(np.asarray(probability, dtype=float), *CLIP))


def scale_to_probability(x: np.ndarray) -> np.ndarray:
    """The inverse of the model's scale: ``Phi(x)``."""
    return ndtr(np.asarray(x, dtype=float))


# --- the fitted model --------------------------------------------------------------------------------


@dataclass
class BayesFit:
    """Fitted parameters; ``aggregate`` combines an open question's forecasts (closed form)."""

    population: dict[str, Any]
    forecasters: dict[Hashable, dict[str, float]]
    method: str = "prior"
    n_questions: int = 0
    n_forecasters: int = 0
    n_forecasts: int = 0
    duration_seconds: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)
    version: int = MODEL_VERSION

    # -- serialisation --
    def to_dict(self) -> dict:
        """A JSON-serialisable dict (forecaster keys kept with their type where JSON allows)."""
        return {
            "version": self.version,
            "method": self.method,
            "population": _jsonable(self.population),
            "forecasters": [[_jsonable(k), _jsonable(v)] for k, v in self.forecasters.items()],
            "n_questions": self.n_questions,
            "n_forecasters": self.n_forecasters,
            "n_forecasts": self.n_forecasts,
            "duration_seconds": self.duration_seconds,
            "diagnostics": _jsonable(self.diagnostics),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BayesFit:
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"unsupported bayes model version {data.get('version')!r}")
        return cls(
            population=dict(data["population"]),
            forecasters={_hashable(k): dict(v) for k, v in data["forecasters"]},
            method=data["method"],
            n_questions=int(data["n_questions"]),
            n_forecasters=int(data["n_forecasters"]),
            n_forecasts=int(data["n_forecasts"]),
            duration_seconds=float(data["duration_seconds"]),
            diagnostics=dict(data.get("diagnostics") or {}),
            version=int(data["version"]),
        )

    # -- parameters --
    def forecaster_parameters(self, key: Hashable) -> dict[str, float]:
        """The forecaster's parameters; a newcomer gets the population means."""
        known = self.forecasters.get(key)
        if known is not None:
            return known
        pop = self.population
        return {
            "log_alpha": 0.0,
            "bias": pop["mu_b"],
            "log_sigma": pop["mu_s"],
            **{f"{name}_sd": pop[tau] for name, tau in _TAU_OF.items()},
        }

    def _arrays(self, keys: Sequence[Hashable]) -> np.ndarray:
        """(n, 3) parameters of these forecasters (population means for newcomers)."""
        return self._rows(keys)[:, : len(_FORECASTER_PARAMS)]

    def _sd_arrays(self, keys: Sequence[Hashable]) -> np.ndarray:
        """(n, 3) posterior sds of these forecasters' parameters (the population spread for newcomers)."""
        return self._rows(keys)[:, len(_FORECASTER_PARAMS) :]

    def _rows(self, keys: Sequence[Hashable]) -> np.ndarray:
        index, table = self._table()
        rows = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        return table[rows]  # row -1 is the newcomer row

    def _table(self) -> tuple[dict[Hashable, int], np.ndarray]:
        cached = self.__dict__.get("_cached_table")
        if cached is None or cached[2] is not self.forecasters or cached[3] != len(self.forecasters):
            index = {k: i for i, k in enumerate(self.forecasters)}
            newcomer = self.forecaster_parameters(object())
            columns = [*_FORECASTER_PARAMS, *_FORECASTER_SDS]
            table = np.array(
                [[v.get(c, newcomer[c]) for c in columns] for v in self.forecasters.values()]
                + [[newcomer[c] for c in columns]],
                dtype=float,
            ).reshape(-1, len(columns))
            cached = (index, table, self.forecasters, len(self.forecasters))
            self.__dict__["_cached_table"] = cached
        return cached[0], cached[1]

    # -- aggregation --
    def aggregate(
        self,
        forecaster_keys: Sequence[Hashable],
        probabilities_yes: Sequence[float],
        seconds_to_resolution: Sequence[float],
        *,
        life_seconds: float | None = None,
        opener_key: Hashable | None = None,
        revisions: Sequence[float] | None = None,
        interval: bool = True,
    ) -> tuple[float, float, float]:
        """``(p_mean, p_low_5, p_high_95)`` for one question from each forecaster's latest forecast.

        ``seconds_to_resolution``: from each forecast to the question's resolution or, for an open
        question, its close date. ``life_seconds``: from the question's opening (or first forecast)
        to that date (default: the longest ``seconds_to_resolution``). ``opener_key``: the forecaster
        who made the question's first forecast (default: the one whose forecast here is the oldest).
        ``revisions``: each forecaster's earlier forecasts on the question (default 0).

        ``p_mean`` is the posterior probability of YES (closed form, a Kalman filter). The interval
        is the central 90% of that probability over the uncertainty in these forecasters'
        parameters: their posterior sds in the fit (a newcomer: the population's spread), with
        ``INTERVAL_DRAWS`` fixed draws, so the same inputs always give the same interval. It is
        narrow for forecasters with a long record and wide for newcomers. No MCMC. With
        ``interval=False`` (scoring needs only the mean) the interval is ``(p_mean, p_mean)``.
        """
        keys = list(forecaster_keys)
        p = np.asarray(probabilities_yes, dtype=float).reshape(-1)
        t = np.maximum(np.asarray(seconds_to_resolution, dtype=float).reshape(-1), 0.0)
        if not (len(keys) == len(p) == len(t)):
            raise ValueError("forecaster_keys, probabilities_yes and seconds_to_resolution differ in length")
        rev = np.zeros(len(p)) if revisions is None else np.asarray(revisions, dtype=float).reshape(-1)
        order = np.lexsort((np.arange(len(t)), -t))
        keys = [keys[i] for i in order]
        p, t, rev = p[order], t[order], rev[order]
        life = float(life_seconds) if life_seconds is not None else (float(t.max()) if len(t) else 1.0)
        life = max(life, float(t.max()) if len(t) else 0.0, 1.0)
        f = _clock(t, life)
        if opener_key is None and keys:
            opener_key = keys[0]
        opener = np.array([k == opener_key for k in keys], dtype=bool)
        z = _covariates(opener, np.arange(len(p), dtype=float), rev, f, t)
        x = _to_scale(p)
        par = self._arrays(keys)
        p_mean = _probability_yes(self.population, par, x, f, z)
        if not interval:
            p_mean = min(max(p_mean, OUTPUT_CLIP[0]), OUTPUT_CLIP[1])
            return p_mean, p_mean, p_mean
        noise = np.random.default_rng(_INTERVAL_SEED).standard_normal((INTERVAL_DRAWS, *par.shape))
        drawn = par[None] + noise * self._sd_arrays(keys)[None]
        p_draws = np.array([_probability_yes(self.population, d, x, f, z) for d in drawn])
        low, high = np.quantile(p_draws, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2])
        lo_clip, hi_clip = OUTPUT_CLIP
        p_mean = min(max(p_mean, lo_clip), hi_clip)
        low = min(max(float(low), lo_clip), p_mean)
        high = max(min(float(high), hi_clip), p_mean)
        return p_mean, low, high


_INTERVAL_SEED = 20240611


def _probability_yes(pop: dict, par: np.ndarray, x: np.ndarray, f: np.ndarray, z: np.ndarray) -> float:
    """P(YES) given the forecasts (model scale ``x``, clock ``f``, covariates ``z``) and parameters."""
    out = _filter(pop, par, x, f, z)
    log_w = out["log_weight"] + out["loglik"]
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    return float(np.sum(w * ndtr(out["m"] / np.sqrt(out["v"] + out["r"]))))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _clock_power(pop: dict, f) -> np.ndarray | float:
    """``f^kappa``: the share of the latent's variance over a question's life still to come at ``f``."""
    return np.power(np.maximum(f, _F_FLOOR), pop["kappa"])


def _remaining(pop: dict, f) -> np.ndarray | float:
    """Variance the latent still gains from clock ``f`` to resolution: ``q f^kappa``."""
    return pop["q"] * _clock_power(pop, f)


def loading(eta, clock_power):
    """How strongly a forecast reads the latent, ``sqrt((1 + eta) / (f^kappa + eta))`` given
    ``clock_power = f^kappa`` (numpy or pytensor): 1 at a question's opening, larger near its
    resolution, where the same latent means a more certain informed forecaster."""
    return ((1.0 + eta) / (clock_power + eta)) ** 0.5


def _volatility_nodes(pop: dict) -> tuple[np.ndarray, np.ndarray]:
    """Question volatility multipliers ``exp(omega xi_k)`` and log weights (Gauss-Hermite on xi ~ N(0, 1))."""
    nodes, weights = _gauss_hermite(N_VOLATILITY)
    return np.exp(pop.get("omega", 0.0) * nodes), np.log(weights)


@functools.cache
def _gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    if k == 1:
        return np.zeros(1), np.ones(1)
    x, w = np.polynomial.hermite.hermgauss(k)
    return x * math.sqrt(2.0), w / math.sqrt(math.pi)


def _filter(pop: dict, par: np.ndarray, x: np.ndarray, f: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """Kalman filters over one question's forecasts (oldest first), one per volatility node.

    Vectorised with prefix scans (no loop over forecasts). Returns, per node, the filtered latent
    mean ``m`` and variance ``v`` at the newest forecast, the variance ``r`` still to come to
    resolution, the log-likelihood ``loglik`` of the forecasts and the prior ``log_weight``.
    """
    scale, log_weight = _volatility_nodes(pop)
    s0sq = pop["s0"] ** 2
    n = len(x)
    if n == 0:
        k = len(scale)
        return {
            "m": np.full(k, pop["m0"]),
            "v": np.full(k, s0sq),
            "r": pop["q"] * scale,
            "loglik": np.zeros(k),
            "log_weight": log_weight,
        }
    gb, gs = np.asarray(pop["gamma_bias"]), np.asarray(pop["gamma_noise"])
    clock_power = _clock_power(pop, f)
    r1 = pop["q"] * clock_power
    alpha = np.exp(par[:, 0]) * loading(pop["eta"], clock_power)
    beta = par[:, 1] + z @ gb
    e = np.exp(2.0 * (par[:, 2] + z @ gs))
    d1 = np.zeros(n)
    d1[1:] = np.maximum(r1[:-1] - r1[1:], 0.0) + pop["q_event"]
    d = scale[:, None] * d1[None, :]  # (K, n)
    a2 = alpha**2
    # Variance recursion v_k = M_k(v_{k-1}), M_k(v) = e (v + d) / (a^2 (v + d) + e): a Moebius map
    # with matrix [[e, e d], [a^2, a^2 d + e]]; prefix products of the matrices give every v_k.
    ones = np.ones_like(d)
    pa, pb, pc, pd = _moebius_prefix(e * ones, e * d, a2 * ones, a2 * d + e)
    v_post = (pa * s0sq + pb) / (pc * s0sq + pd)
    v_prev = np.concatenate([np.full((len(scale), 1), s0sq), v_post[:, :-1]], axis=1) + d
    s_pred = a2 * v_prev + e
    gain = v_prev * alpha / s_pred
    keep = e / s_pred  # 1 - gain * alpha
    # Mean recursion m_k = keep_k m_{k-1} + gain_k (x_k - beta_k): prefix compositions of affine maps.
    slope, offset = _affine_prefix(keep, gain * (x - beta))
    m_post = slope * pop["m0"] + offset
    m_prev = np.concatenate([np.full((len(scale), 1), pop["m0"]), m_post[:, :-1]], axis=1)
    innovation = x - alpha * m_prev - beta
    loglik = -0.5 * np.sum(np.log(2 * np.pi * s_pred) + innovation**2 / s_pred, axis=1)
    return {"m": m_post[:, -1], "v": v_post[:, -1], "r": r1[-1] * scale, "loglik": loglik, "log_weight": log_weight}


def _moebius_prefix(a, b, c, d):
    """Inclusive prefix products ``M_k @ ... @ M_0`` of 2x2 matrices [[a, b], [c, d]] along the last
    axis (Hillis-Steele scan), each rescaled to a largest entry of 1 (Moebius maps are projective)."""
    n = a.shape[-1]
    shift = 1
    while shift < n:
        a0, b0, c0, d0 = a[..., :-shift], b[..., :-shift], c[..., :-shift], d[..., :-shift]
        a1, b1, c1, d1 = a[..., shift:], b[..., shift:], c[..., shift:], d[..., shift:]
        na, nb = a1 * a0 + b1 * c0, a1 * b0 + b1 * d0
        nc, nd = c1 * a0 + d1 * c0, c1 * b0 + d1 * d0
        top = np.maximum(np.maximum(np.abs(na), np.abs(nb)), np.maximum(np.abs(nc), np.abs(nd)))
        top[top == 0] = 1.0
        a = np.concatenate([a[..., :shift], na / top], axis=-1)
        b = np.concatenate([b[..., :shift], nb / top], axis=-1)
        c = np.concatenate([c[..., :shift], nc / top], axis=-1)
        d = np.concatenate([d[..., :shift], nd / top], axis=-1)
        shift *= 2
    return a, b, c, d


def _affine_prefix(slope, offset):
    """Prefix compositions of the maps ``m -> slope_k m + offset_k`` along the last axis."""
    n = slope.shape[-1]
    shift = 1
    while shift < n:
        s0, o0 = slope[..., :-shift], offset[..., :-shift]
        s1, o1 = slope[..., shift:], offset[..., shift:]
        slope = np.concatenate([slope[..., :shift], s1 * s0], axis=-1)
        offset = np.concatenate([offset[..., :shift], s1 * o0 + o1], axis=-1)
        shift *= 2
    return slope, offset


# --- the training likelihood (pytensor) ------------------------------------------------------------


@dataclass
class _Layout:
    """Training data arranged for the bucketed Kalman scans."""

    x: np.ndarray
    forecaster: np.ndarray
    f: np.ndarray
    z: np.ndarray
    prev: np.ndarray
    buckets: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    keys: list[Hashable]
    counts: np.ndarray


def _choose_buckets(counts: np.ndarray, n_buckets: int) -> list[tuple[int, int]]:
    """Split the questions' forecast counts into contiguous ranges minimising the padded cost."""
    values = np.unique(counts)
    nv = len(values)
    b_max = min(n_buckets, nv)
    upto = np.array([(counts <= v).sum() for v in values])

    def cost(i: int, j: int) -> float:
        questions = upto[j] - (upto[i - 1] if i else 0)
        return float(questions * values[j] + _STEP_COST * values[j])

    best = np.full((b_max + 1, nv), np.inf)
    arg = np.zeros((b_max + 1, nv), dtype=int)
    for j in range(nv):
        best[1, j] = cost(0, j)
    for b in range(2, b_max + 1):
        for j in range(nv):
            for i in range(1, j + 1):
                c = best[b - 1, i - 1] + cost(i, j)
                if c < best[b, j]:
                    best[b, j], arg[b, j] = c, i
    b = int(np.argmin(best[1:, nv - 1])) + 1
    ranges, j = [], nv - 1
    while b >= 1:
        i = arg[b, j] if b > 1 else 0
        ranges.append((int(values[i]), int(values[j])))
        j, b = i - 1, b - 1
    return ranges[::-1]


def _layout(data: ForecastData) -> _Layout:
    if data.outcome is None:
        raise ValueError("fitting needs the outcome of every question")
    data = data.standing()
    order = np.arange(data.n_forecasts)  # standing() rows are ordered
    q = data.question_index[order]
    keys_sorted = data.forecaster_key[order]
    forecaster, uniq = _key_codes(keys_sorted, with_keys=True)
    n = len(order)
    counts = np.bincount(q, minlength=data.n_questions)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    position = np.arange(n) - starts[q]
    prev = np.arange(n, dtype=np.int64)
    prev[position > 0] = np.flatnonzero(position > 0) - 1
    f = _clock(data.seconds_to_resolution[order], data.life_seconds[q])
    z = _covariates(
        data.opener[order], position.astype(float), data.revisions[order], f, data.seconds_to_resolution[order]
    )
    last = starts + counts - 1
    buckets = []
    present = counts[counts > 0]
    ranges = _choose_buckets(present, N_BUCKETS) if len(present) else []
    for lo, hi in ranges:
        qs = np.flatnonzero((counts >= lo) & (counts <= hi))
        idx = np.full((hi, len(qs)), n, dtype=np.int64)  # n: a padding cell
        mask = np.zeros((hi, len(qs)))
        for col, qq in enumerate(qs):
            c = counts[qq]
            idx[:c, col] = np.arange(starts[qq], starts[qq] + c)
            mask[:c, col] = 1.0
        buckets.append((idx, mask, last[qs].astype(np.int64), data.outcome[qs].astype(float)))
    while len(buckets) < N_BUCKETS:  # empty blocks keep one compiled function for every data set
        buckets.append((np.full((1, 0), n, dtype=np.int64), np.zeros((1, 0)), np.zeros(0, np.int64), np.zeros(0)))
    return _Layout(
        x=_to_scale(data.probability[order]),
        forecaster=forecaster,
        f=f,
        z=z,
        prev=prev,
        buckets=buckets,
        keys=uniq,
        counts=np.bincount(forecaster, minlength=len(uniq)),
    )


def _log_ndtr(z):
    """Stable ``log Phi(z)`` for pytensor tensors."""
    import pytensor.tensor as pt

    return pt.switch(
        z < 0,
        pt.log(0.5 * pt.erfcx(-z / math.sqrt(2.0))) - z**2 / 2,
        pt.log1p(-0.5 * pt.erfc(z / math.sqrt(2.0))),
    )


def _loglik_graph(g: dict, gb, gs, par: dict, inputs: dict):
    """Log-likelihood of the resolved questions (forecasts and outcomes), as a pytensor scalar.

    ``g``: global tensors (m0, s0, q, kappa, q_event, omega, eta); ``par``: per-forecaster vectors
    (log_alpha, bias, log_sigma); ``inputs``: the data tensors of ``_input_tensors``.
    """
    import pytensor
    import pytensor.tensor as pt

    fidx, z = inputs["forecaster"], inputs["z"]
    clock_power = pt.exp(g["kappa"] * pt.log(inputs["f"]))
    r = g["q"] * clock_power
    alpha = pt.exp(par["log_alpha"][fidx]) * loading(g["eta"], clock_power)
    beta = par["bias"][fidx] + z.dot(gb)
    e = pt.exp(2.0 * (par["log_sigma"][fidx] + z.dot(gs)))
    prev = inputs["prev"]
    is_later = pt.neq(prev, pt.arange(prev.shape[0]))
    d = (pt.maximum(r[prev] - r, 0.0) + g["q_event"]) * is_later
    one, zero = pt.ones((1,)), pt.zeros((1,))
    xe = pt.concatenate([inputs["x"], zero])
    ae = pt.concatenate([alpha, one])
    be = pt.concatenate([beta, zero])
    ee = pt.concatenate([e, one])
    de = pt.concatenate([d, zero])

    nodes, weights = _gauss_hermite(N_VOLATILITY)
    scale = pt.exp(g["omega"] * pt.as_tensor(nodes))[None, :]  # (1, K)
    log_weight = pt.as_tensor(np.log(weights))[None, :]

    def step(x_, a_, b_, e_, d_, mask_, m_, v_, ll_):
        x_, a_, b_, e_, d_, mask_ = (t[:, None] for t in (x_, a_, b_, e_, d_, mask_))
        v_ = v_ + d_ * scale
        s_ = a_**2 * v_ + e_
        innovation = x_ - a_ * m_ - b_
        gain = v_ * a_ / s_
        ll_ = ll_ + mask_ * (-0.5 * pt.log(2 * np.pi * s_) - 0.5 * innovation**2 / s_)
        return m_ + mask_ * gain * innovation, v_ - mask_ * gain * a_ * v_, ll_

    total = 0.0
    k = len(nodes)
    for idx, mask, last, y in inputs["buckets"]:
        nq = y.shape[0]
        ms, vs, lls = pytensor.scan(
            step,
            sequences=[xe[idx], ae[idx], be[idx], ee[idx], de[idx], mask],
            outputs_info=[pt.zeros((nq, k)) + g["m0"], pt.zeros((nq, k)) + g["s0"] ** 2, pt.zeros((nq, k))],
            return_updates=False,
        )
        z_out = (2 * y - 1)[:, None] * ms[-1] / pt.sqrt(vs[-1] + r[last][:, None] * scale)
        per_node = log_weight + FORECAST_WEIGHT * lls[-1] + _log_ndtr(z_out)
        total = total + pt.logsumexp(per_node, axis=1).sum()
    return total


def _input_tensors() -> dict:
    import pytensor.tensor as pt

    return {
        "x": pt.dvector("x"),
        "forecaster": pt.lvector("forecaster"),
        "f": pt.dvector("f"),
        "z": pt.dmatrix("z"),
        "prev": pt.lvector("prev"),
        "buckets": [
            (pt.lmatrix(f"idx{b}"), pt.dmatrix(f"mask{b}"), pt.lvector(f"last{b}"), pt.dvector(f"y{b}"))
            for b in range(N_BUCKETS)
        ],
    }


def _input_values(layout: _Layout) -> list:
    values = [layout.x, layout.forecaster, layout.f, layout.z, layout.prev]
    for bucket in layout.buckets:
        values.extend(bucket)
    return values


def _flat_inputs(inputs: dict) -> list:
    flat = [inputs["x"], inputs["forecaster"], inputs["f"], inputs["z"], inputs["prev"]]
    for bucket in inputs["buckets"]:
        flat.extend(bucket)
    return flat


def likelihood_globals(gv: dict) -> dict:
    """The likelihood's global tensors (``_loglik_graph``'s ``g``) from the sampled ones (``_GLOBALS``)."""
    import pytensor.tensor as pt

    return {
        "m0": gv["m0"],
        "s0": pt.exp(gv["log_s0"]),
        "q": pt.exp(gv["log_q"]),
        "kappa": pt.exp(gv["log_kappa"]),
        "q_event": pt.exp(gv["log_q_event"]),
        "omega": pt.exp(gv["log_omega"]),
        "eta": pt.exp(gv["log_eta"]),
    }


def _fast_likelihood() -> bool:
    """Whether the numba Kalman kernel (``bayes_sampling``) computes this module's likelihood."""
    from forecasting import bayes_sampling

    return bool(bayes_sampling.likelihood_check()["ok"])


@functools.cache
def _map_objective(fast: bool):
    """Compiled ``(theta, nf, *data) -> (negative log posterior, gradient)``; built once per process.

    ``fast``: the likelihood by ``bayes_sampling``'s numba kernel (data: ``_map_values``), else by
    ``_loglik_graph``'s scan (the same function, ~10x slower)."""
    import pytensor
    import pytensor.tensor as pt

    theta = pt.dvector("theta")
    nf = pt.lscalar("nf")
    inputs = _input_tensors()
    gv = {name: theta[i] for i, name in enumerate(_GLOBAL_NAMES)}
    gb = theta[_NG : _NG + N_COV]
    gs = theta[_NG + N_COV : _NG + 2 * N_COV]
    o = _NG + 2 * N_COV
    par = {name: theta[o + i * nf : o + (i + 1) * nf] for i, name in enumerate(_FORECASTER_PARAMS)}
    g = likelihood_globals(gv)
    if fast:
        from forecasting import bayes_sampling

        blocks = bayes_sampling.block_tensors()
        loglik = bayes_sampling.fast_loglik_graph(g, gb, gs, par, blocks)
        data_inputs = [inputs["forecaster"], inputs["z"], *blocks.values()]
    else:
        loglik = _loglik_graph(g, gb, gs, par, inputs)
        data_inputs = _flat_inputs(inputs)

    # Hierarchical prior with a Laplace approximation of each forecaster effect: the joint mode of
    # a centred hierarchy sends tau to 0; integrating each effect out (Gaussian approximation with
    # the data's Fisher information h) replaces N(theta_j | mu, tau) by
    # N(theta_j | mu, tau) * sqrt(2 pi / (1 / tau^2 + h_j)), which keeps tau where the data put it.
    fidx, z = inputs["forecaster"], inputs["z"]
    xsq = pt.dvector("xsq")  # each forecast's squared probit (``_map_values``)
    data_inputs = [xsq, *data_inputs]

    def per_forecaster(v):
        return pt.inc_subtensor(pt.zeros((nf,))[fidx], v)

    # A forecast's precision is exp(-2 log_sigma_j) * exp(-2 z . gamma_noise): sum the second factor
    # per forecaster (two scatters, not one per effect). The information on log alpha_j is
    # sum_k prec_k (alpha_j g_k l_k)^2, with the squared forecast x_k^2 standing in for (alpha g l)^2.
    # (The latent's prior second moment m0^2 + s0^2 + q did before: the optimiser then shrank the
    # latent's variance to shrink this penalty, to q = 0.003 on the bench's data drawn with q = 2.)
    covariate_prec = pt.exp(-2.0 * z.dot(gs))
    sum_prec = per_forecaster(covariate_prec)
    forecaster_prec = pt.exp(-2.0 * par["log_sigma"])
    info = {
        "log_alpha": forecaster_prec * per_forecaster(covariate_prec * xsq),
        "bias": forecaster_prec * sum_prec,
        "log_sigma": 2.0 * per_forecaster(pt.ones_like(covariate_prec)),
    }
    means = {"log_alpha": 0.0, "bias": gv["mu_b"], "log_sigma": gv["mu_s"]}
    taus = {"log_alpha": "log_tau_a", "bias": "log_tau_b", "log_sigma": "log_tau_s"}
    logprior = 0.0
    for name in _FORECASTER_PARAMS:
        log_tau = gv[taus[name]]
        tau = pt.exp(log_tau)
        logprior += (-0.5 * ((par[name] - means[name]) / tau) ** 2).sum()
        logprior += (-0.5 * pt.log1p(info[name] * tau**2)).sum()
        logprior += _TAU_SHAPE * log_tau - _TAU_RATE * tau  # Gamma(2, 2) on tau, with the log Jacobian
    for name, mean, sd, *_ in _GLOBALS:
        if mean is not None:
            logprior += -0.5 * ((gv[name] - mean) / sd) ** 2
    logprior += -0.5 * ((gb / _SLOPE_SD) ** 2).sum() - 0.5 * ((gs / _SLOPE_SD) ** 2).sum()
    objective = -(loglik + logprior)
    grad = pytensor.grad(objective, theta)
    return pytensor.function([theta, nf, *data_inputs], [objective, grad], on_unused_input="ignore")


def _map_values(layout: _Layout, fast: bool) -> list:
    """The data arguments of ``_map_objective(fast)``."""
    xsq = layout.x**2
    if not fast:
        return [xsq, *_input_values(layout)]
    from forecasting import bayes_sampling

    blocks = bayes_sampling.block_values(layout)
    return [xsq, layout.forecaster, layout.z, *(blocks[name] for name in bayes_sampling.block_tensors())]


# --- fitting ---------------------------------------------------------------------------------------


def default_population() -> dict[str, Any]:
    """Population parameters at their prior centres: what ``fit`` starts from (and a fit on nothing)."""
    return _population_from_vector(np.array([g[3] for g in _GLOBALS] + [0.0] * (2 * N_COV)))


def prior_fit() -> BayesFit:
    """A fit without data: every forecaster is a newcomer with the population's prior parameters."""
    return BayesFit(population=default_population(), forecasters={}, method="prior")


def _population_from_vector(theta: np.ndarray) -> dict[str, Any]:
    gv = dict(zip(_GLOBAL_NAMES, (float(v) for v in theta[:_NG]), strict=True))
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
        "gamma_bias": [float(v) for v in theta[_NG : _NG + N_COV]],
        "gamma_noise": [float(v) for v in theta[_NG + N_COV : _NG + 2 * N_COV]],
        "covariates": list(COVARIATES),
    }


def _vector_from_population(pop: dict) -> np.ndarray:
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
    values = [math.log(pop[logs[n]]) if n in logs else pop[n] for n in _GLOBAL_NAMES]
    return np.array(values + list(pop["gamma_bias"]) + list(pop["gamma_noise"]), dtype=float)


def fit(
    data: ForecastData,
    *,
    method: str = "map",
    previous: BayesFit | None = None,
    draws: int = 450,
    tune: int | None = None,
    chains: int = 2,
    random_seed: int | None = 0,
    max_iterations: int = 3000,
) -> BayesFit:
    """Fit the model on resolved questions: ``method="map"`` (L-BFGS, fast) or ``"nuts"`` (PyMC).

    ``previous`` (MAP only) warm-starts the optimiser from an earlier fit: its population values
    and the parameters of the forecasters it knows.
    """
    if method == "map":
        return _fit_map(data, previous=previous, max_iterations=max_iterations)
    if method == "nuts":
        return _fit_nuts(data, draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    raise ValueError(f"unknown fit method {method!r}: 'map' or 'nuts'")


def _bounds(nf: int) -> list[tuple[float, float]]:
    bounds = [(g[4], g[5]) for g in _GLOBALS] + [(-5.0, 5.0)] * (2 * N_COV)
    for lo_hi in _FORECASTER_BOUNDS:
        bounds.extend([lo_hi] * nf)
    return bounds


def _fit_map(data: ForecastData, *, previous: BayesFit | None, max_iterations: int) -> BayesFit:
    started = time.monotonic()
    if data.n_forecasts == 0:
        result = prior_fit()
        result.method = "map"
        result.n_questions = data.n_questions
        return result
    layout = _layout(data)
    nf = len(layout.keys)
    # (a previous fit may predate a parameter: that one starts from its default)
    start_pop = default_population() | (previous.population if previous is not None else {})
    theta0 = np.empty(_NG + 2 * N_COV + len(_FORECASTER_PARAMS) * nf)
    theta0[: _NG + 2 * N_COV] = _vector_from_population(start_pop)
    prior_arrays = previous._arrays(layout.keys) if previous is not None else None
    o = _NG + 2 * N_COV
    for i, name in enumerate(_FORECASTER_PARAMS):
        if prior_arrays is not None:
            theta0[o + i * nf : o + (i + 1) * nf] = prior_arrays[:, i]
        else:
            theta0[o + i * nf : o + (i + 1) * nf] = {"bias": start_pop["mu_b"], "log_sigma": start_pop["mu_s"]}.get(
                name, 0.0
            )
    bounds = _bounds(nf)
    theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    fast = _fast_likelihood()
    objective = _map_objective(fast)
    values = _map_values(layout, fast)

    def fun(theta):
        value, grad = objective(theta, nf, *values)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return float(value), np.array(grad, dtype=float)  # a copy: pytensor may reuse its output buffer

    # L-BFGS on u = scale * (theta - theta0): unit curvature along each coordinate at the start
    # (measured on the bench data: 4x fewer evaluations, and a better optimum, than on theta).
    scale = _diagonal_scale(fun, theta0, bounds, layout.counts)
    lower = np.array([b[0] for b in bounds])
    upper = np.array([b[1] for b in bounds])

    def scaled(u):
        value, grad = fun(theta0 + u / scale)
        return value, grad / scale

    res = minimize(
        scaled,
        np.zeros_like(theta0),
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip((lower - theta0) * scale, (upper - theta0) * scale, strict=True)),
        options={"maxiter": max_iterations, "maxcor": 30},
    )
    theta = np.clip(theta0 + res.x / scale, lower, upper)
    population = _population_from_vector(theta)
    params = theta[o:].reshape(len(_FORECASTER_PARAMS), nf).T
    forecasters = forecaster_records(layout, params, laplace_sds(population, params, layout))
    return BayesFit(
        population=population,
        forecasters=forecasters,
        method="map",
        n_questions=data.n_questions,
        n_forecasters=nf,
        n_forecasts=len(layout.x),
        duration_seconds=time.monotonic() - started,
        diagnostics={
            "converged": bool(res.success),
            "message": str(res.message),
            "iterations": int(res.nit),
            "evaluations": int(res.nfev),
            "neg_log_posterior": float(res.fun),
            "likelihood": "kalman-numba" if fast else "pytensor-scan",
        },
    )


def laplace_sds(population: dict, params: np.ndarray, layout: _Layout) -> np.ndarray:
    """(nf, 3) posterior sds of the forecaster effects at a point estimate: precision = 1 / tau^2 + the
    data's Fisher information, as in the MAP objective, except for log alpha.

    The information on log alpha_j is sum_k prec_k alpha_j^2 g_k^2 E[l_k^2], with E[l_k^2] the latent's
    prior second moment when forecast k was made, ``m0^2 + s0^2 + q (1 - f^kappa)``. The MAP objective
    uses x_k^2 there, which does not move with the parameters it optimises; here the parameters are
    fixed, and the latent's moment is the better estimate for forecasts near 50%: with x_k^2 the
    sampler's partial centring (``bayes_sampling._partial_centring``) left some forecasters' log alpha
    with an ESS below 100."""
    pop = population
    alpha, sigma = np.exp(params[:, 0]), np.exp(params[:, 2])
    nf = len(params)
    covariate_prec = np.exp(-2.0 * layout.z @ np.asarray(pop["gamma_noise"]))
    sum_prec = np.bincount(layout.forecaster, weights=covariate_prec, minlength=nf) / sigma**2
    clock_power = _clock_power(pop, layout.f)
    latent_sq = pop["m0"] ** 2 + pop["s0"] ** 2 + pop["q"] * (1.0 - clock_power)
    read_sq = latent_sq * loading(pop["eta"], clock_power) ** 2
    info = np.column_stack(
        [
            np.bincount(layout.forecaster, weights=covariate_prec * read_sq, minlength=nf) * (alpha / sigma) ** 2,
            sum_prec,
            2.0 * np.bincount(layout.forecaster, minlength=nf),
        ]
    )
    taus = np.array([pop[_TAU_OF[name]] for name in _FORECASTER_PARAMS])
    return 1.0 / np.sqrt(1.0 / taus**2 + info)


def forecaster_records(layout: _Layout, params: np.ndarray, sds: np.ndarray) -> dict[Hashable, dict[str, float]]:
    """``BayesFit.forecasters`` from (nf, 3) parameters and their posterior sds."""
    return {
        key: {
            **{name: float(params[j, i]) for i, name in enumerate(_FORECASTER_PARAMS)},
            **{name: float(sds[j, i]) for i, name in enumerate(_FORECASTER_SDS)},
            "n_forecasts": int(layout.counts[j]),
        }
        for j, key in enumerate(layout.keys)
    }


def _diagonal_scale(fun, theta0: np.ndarray, bounds: list, counts: np.ndarray) -> np.ndarray:
    """Square roots of the objective's curvature along each coordinate at ``theta0`` (at least 1): by
    finite differences of the gradient for the global parameters, and ``sqrt(forecasts + 4)`` for each
    forecaster effect (the data's information grows with the forecaster's forecasts)."""
    n_globals = _NG + 2 * N_COV
    scale = np.ones_like(theta0)
    base = fun(theta0)[1]
    step = 1e-4
    for i in range(n_globals):
        moved = theta0.copy()
        h = step if theta0[i] + step <= bounds[i][1] else -step
        moved[i] += h
        curvature = abs((fun(moved)[1][i] - base[i]) / h)
        scale[i] = math.sqrt(max(curvature, 1.0)) if np.isfinite(curvature) else 1.0
    per_forecaster = np.sqrt(np.asarray(counts, dtype=float) + 4.0)
    scale[n_globals:] = np.tile(per_forecaster, len(_FORECASTER_PARAMS))
    return scale


def _fit_nuts(data: ForecastData, *, draws: int, tune: int | None, chains: int, random_seed: int | None) -> BayesFit:
    """Full posterior with NUTS (``forecasting.bayes_sampling``)."""
    from forecasting import bayes_sampling

    return bayes_sampling.fit_nuts(data, draws=draws, tune=tune, chains=chains, random_seed=random_seed)


# --- walk-forward evaluation hook -------------------------------------------------------------------


_QUESTION_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LAST_EVALUATION_FIT: dict[str, Any] = {}


def _question_rows(history) -> dict[str, np.ndarray]:
    """A resolved question's latest forecasts as model rows (cached per history object)."""
    cached = _QUESTION_CACHE.get(history)
    if cached is None:
        cached = _rows(history)
        _QUESTION_CACHE[history] = cached
    return cached


def _rows(history) -> dict[str, np.ndarray]:
    log = history.all_forecasts
    keys = np.asarray(history.forecaster_ids, dtype=object)
    first_key = log.forecaster_ids[0] if len(log.forecaster_ids) else None
    all_keys, all_counts = np.unique(np.asarray(log.forecaster_ids, dtype=object).astype(str), return_counts=True)
    counts = dict(zip(all_keys.tolist(), all_counts.tolist(), strict=True))
    return {
        "keys": keys,
        "p": np.asarray(history.probabilities, dtype=float)[:, 1],
        "t": np.maximum(history.resolved_at - np.asarray(history.made_at, dtype=float), 0.0),
        "life": max(history.resolved_at - float(log.made_at[0]), 0.0) if len(log.made_at) else 0.0,
        "opener": np.array([first_key is not None and k == first_key for k in keys], dtype=bool),
        "revisions": np.array([counts[str(k)] - 1 for k in keys], dtype=float),
    }


def data_from_histories(histories: Sequence) -> ForecastData:
    """``ForecastData`` of resolved ``evaluation.QuestionHistory`` objects (latest forecasts)."""
    rows = [_question_rows(h) for h in histories]
    sizes = [len(r["p"]) for r in rows]

    def cat(name, dtype=float):
        return np.concatenate([r[name] for r in rows]).astype(dtype) if rows else np.zeros(0, dtype)

    return ForecastData(
        question_index=np.repeat(np.arange(len(rows)), sizes),
        forecaster_key=cat("keys", object),
        probability=cat("p"),
        seconds_to_resolution=cat("t"),
        outcome=np.array([h.outcome_index for h in histories], dtype=np.int64),
        life_seconds=np.array([r["life"] for r in rows], dtype=float),
        opener=cat("opener", bool),
        revisions=cat("revisions"),
        n_questions=len(rows),
    )


def aggregate_history(result: BayesFit, history) -> np.ndarray:
    """``[P(no), P(yes)]`` of a question history at its resolution (the evaluation's final aggregate)."""
    rows = _rows(history)
    first = history.all_forecasts.forecaster_ids[0] if len(history.all_forecasts.forecaster_ids) else None
    p_yes, _, _ = result.aggregate(
        rows["keys"],
        rows["p"],
        rows["t"],
        life_seconds=rows["life"],
        opener_key=first,
        revisions=rows["revisions"],
        interval=False,
    )
    return np.array([1.0 - p_yes, p_yes])


def fit_for_evaluation(training: list) -> dict:
    """Learner for ``evaluation.LEARNERS``: a MAP fit on the training questions.

    Warm-starts from the previous call's fit when that fit's questions are a prefix of these (the
    walk-forward refits); below ``MIN_TRAINING_QUESTIONS`` questions it uses the prior.
    """
    if len(training) < MIN_TRAINING_QUESTIONS:
        result = prior_fit()
    else:
        ids = [h.question_id for h in training]
        previous = _LAST_EVALUATION_FIT.get("fit")
        previous_ids = _LAST_EVALUATION_FIT.get("ids")
        if previous_ids is None or len(previous_ids) > len(ids) or ids[: len(previous_ids)] != previous_ids:
            previous = None
        result = fit(data_from_histories(training), method="map", previous=previous)
        _LAST_EVALUATION_FIT.update(fit=result, ids=ids)
    return {"__aggregate__": functools.partial(aggregate_history, result)}


# --- worker start -----------------------------------------------------------------------------------


def warm_up() -> float:
    """Compile the MAP objective (pytensor's C code, cached on disk) and run it on a tiny data set,
    so that a worker's first real fit does not pay for compilation. Returns the seconds it took."""
    started = time.monotonic()
    _fit_map(warm_up_data(), previous=None, max_iterations=5)
    return time.monotonic() - started


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
