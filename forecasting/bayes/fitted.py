"""The fitted model (``BayesFit``): its parameters and their posterior sds, its JSON form, and the
closed-form aggregate of an open question's forecasts (a Kalman filter: no sampling).
Pure numpy/scipy: no Django import."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr

from .layout import TrainingLayout
from .model import (
    FORECASTER_PARAMS,
    FORECASTER_SDS,
    INTERVAL,
    INTERVAL_DRAWS,
    MODEL_VERSION,
    OUTPUT_CLIP,
    TAU_OF,
    clock_power_at,
    covariates,
    default_population,
    life_fraction,
    loading,
    to_scale,
    volatility_nodes,
)


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
            **{f"{name}_sd": pop[tau] for name, tau in TAU_OF.items()},
        }

    def _arrays(self, keys: Sequence[Hashable]) -> np.ndarray:
        """(n, 3) parameters of these forecasters (population means for newcomers)."""
        return self._rows(keys)[:, : len(FORECASTER_PARAMS)]

    def _sd_arrays(self, keys: Sequence[Hashable]) -> np.ndarray:
        """(n, 3) posterior sds of these forecasters' parameters (the population spread for newcomers)."""
        return self._rows(keys)[:, len(FORECASTER_PARAMS) :]

    def _rows(self, keys: Sequence[Hashable]) -> np.ndarray:
        index, table = self._table()
        rows = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        return table[rows]  # row -1 is the newcomer row

    def _table(self) -> tuple[dict[Hashable, int], np.ndarray]:
        cached = self.__dict__.get("_cached_table")
        if cached is None or cached[2] is not self.forecasters or cached[3] != len(self.forecasters):
            index = {k: i for i, k in enumerate(self.forecasters)}
            newcomer = self.forecaster_parameters(object())
            columns = [*FORECASTER_PARAMS, *FORECASTER_SDS]
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
        f = life_fraction(t, life)
        if opener_key is None and keys:
            opener_key = keys[0]
        opener = np.array([k == opener_key for k in keys], dtype=bool)
        z = covariates(opener, np.arange(len(p), dtype=float), rev, f, t)
        x = to_scale(p)
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


def _filter(pop: dict, par: np.ndarray, x: np.ndarray, f: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """Kalman filters over one question's forecasts (oldest first), one per volatility node.

    Vectorised with prefix scans (no loop over forecasts). Returns, per node, the filtered latent
    mean ``m`` and variance ``v`` at the newest forecast, the variance ``r`` still to come to
    resolution, the log-likelihood ``loglik`` of the forecasts and the prior ``log_weight``.
    """
    scale, log_weight = volatility_nodes(pop)
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
    clock_power = clock_power_at(pop, f)
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


# --- building fits: the prior fit, and a fit's forecaster records (MAP and NUTS alike) -------------


def prior_fit() -> BayesFit:
    """A fit without data: every forecaster is a newcomer with the population's prior parameters."""
    return BayesFit(population=default_population(), forecasters={}, method="prior")


def laplace_sds(population: dict, params: np.ndarray, layout: TrainingLayout) -> np.ndarray:
    """(nf, 3) posterior sds of the forecaster effects at a point estimate: precision = 1 / tau^2 + the
    data's Fisher information, as in the MAP objective, except for log alpha.

    The information on log alpha_j is sum_k prec_k alpha_j^2 g_k^2 E[l_k^2], with E[l_k^2] the latent's
    prior second moment when forecast k was made, ``m0^2 + s0^2 + q (1 - f^kappa)``. The MAP objective
    uses x_k^2 there, which does not move with the parameters it optimises; here the parameters are
    fixed, and the latent's moment is the better estimate for forecasts near 50%: with x_k^2 the
    sampler's partial centring (``sampling._partial_centring``) left some forecasters' log alpha
    with an ESS below 100."""
    pop = population
    alpha, sigma = np.exp(params[:, 0]), np.exp(params[:, 2])
    nf = len(params)
    covariate_prec = np.exp(-2.0 * layout.z @ np.asarray(pop["gamma_noise"]))
    sum_prec = np.bincount(layout.forecaster, weights=covariate_prec, minlength=nf) / sigma**2
    clock_power = clock_power_at(pop, layout.f)
    latent_sq = pop["m0"] ** 2 + pop["s0"] ** 2 + pop["q"] * (1.0 - clock_power)
    read_sq = latent_sq * loading(pop["eta"], clock_power) ** 2
    info = np.column_stack(
        [
            np.bincount(layout.forecaster, weights=covariate_prec * read_sq, minlength=nf) * (alpha / sigma) ** 2,
            sum_prec,
            2.0 * np.bincount(layout.forecaster, minlength=nf),
        ]
    )
    taus = np.array([pop[TAU_OF[name]] for name in FORECASTER_PARAMS])
    return 1.0 / np.sqrt(1.0 / taus**2 + info)


def forecaster_records(layout: TrainingLayout, params: np.ndarray, sds: np.ndarray) -> dict[Hashable, dict[str, float]]:
    """``BayesFit.forecasters`` from (nf, 3) parameters and their posterior sds."""
    return {
        key: {
            **{name: float(params[j, i]) for i, name in enumerate(FORECASTER_PARAMS)},
            **{name: float(sds[j, i]) for i, name in enumerate(FORECASTER_SDS)},
            "n_forecasts": int(layout.counts[j]),
        }
        for j, key in enumerate(layout.keys)
    }
