"""The model as PyMC sees it for NUTS: the likelihood and priors of the MAP fit, in coordinates chosen
for the sampler, with the data in ``pm.Data`` containers; compiled once per process and capacity
(forecaster slots, padded up to powers of sqrt 2), and its log posterior at a point (``LogPosterior``).
No Django import."""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph

from .graph import covariate_dot, likelihood_globals, loglik_graph
from .kernel_op import block_values, fast_loglik_graph, likelihood_check, question_arrays
from .layout import TrainingLayout, training_layout
from .model import (
    FORECASTER_PARAMS,
    GLOBAL_NAMES,
    GLOBALS,
    N_BUCKETS,
    N_COV,
    N_GLOBALS,
    SLOPE_SD,
    TAU_OF,
    TAU_RATE,
    TAU_SHAPE,
    ForecastData,
    default_population,
    vector_from_population,
)

MIN_CAPACITY = 64  # forecaster slots of the smallest compiled model
CENTRE_MIN_FORECASTS = 10  # a forecaster effect is centred when this many forecasts inform it
N_GLOBAL_COORDS = N_GLOBALS + 2 * N_COV  # global parameters: the MAP vector without the forecaster effects
GLOBAL_INDEX = {name: i for i, name in enumerate(GLOBAL_NAMES)}


def capacity_for(n_forecasters: int) -> int:
    """Forecaster slots of the compiled model: powers of sqrt(2) from ``MIN_CAPACITY``, so that a
    model is recompiled only when the number of forecasters grows by more than 41%."""
    if n_forecasters <= MIN_CAPACITY:
        return MIN_CAPACITY
    steps = math.ceil(2.0 * math.log2(n_forecasters / MIN_CAPACITY) - 1e-9)
    return math.ceil(MIN_CAPACITY * 2.0 ** (steps / 2.0))


def _centring(layout: TrainingLayout, capacity: int) -> dict[str, np.ndarray]:
    """How the sampler places each forecaster effect (any choice gives the same posterior):

    ``centred`` (3, capacity): 1.0 where the effect is sampled centred (the forecaster's data pin it
    down), 0.0 where non-centred (few forecasts, or a padding slot); ``fit_nuts`` later replaces the
    log alpha row by partial centrings in [0, 1] (``sampling._partial_centring``). ``zbar`` (capacity, N_COV): the
    forecaster's mean covariates; ``zbar_mean`` (2, N_COV): their mean over the centred forecasters,
    for the bias and the log noise. A centred bias is sampled as ``bias_j + zbar_j . gamma_bias`` (what
    the forecaster's forecasts measure) and ``mu_b`` as ``mu_b + zbar_mean . gamma_bias``, and the
    same for the noise: otherwise every forecaster effect moves with the covariate slopes."""
    nf = len(layout.keys)
    counts = np.maximum(layout.counts, 1)
    zbar = np.zeros((capacity, N_COV))
    for c in range(N_COV):
        zbar[:nf, c] = np.bincount(layout.forecaster, weights=layout.z[:, c], minlength=nf) / counts
    informed = {
        "log_alpha": layout.counts,
        "bias": layout.counts,
        "log_sigma": layout.counts,
    }
    centred = np.zeros((len(FORECASTER_PARAMS), capacity))
    for i, name in enumerate(FORECASTER_PARAMS):
        centred[i, :nf] = informed[name] >= CENTRE_MIN_FORECASTS
    zbar_mean = np.zeros((2, N_COV))
    for row, name in enumerate(("bias", "log_sigma")):
        c = centred[FORECASTER_PARAMS.index(name)]
        if c.sum():
            zbar_mean[row] = (c[:, None] * zbar).sum(axis=0) / c.sum()
    return {"centred": centred, "zbar": zbar, "zbar_mean": zbar_mean}


def data_values(layout: TrainingLayout, capacity: int, fast: bool) -> dict[str, np.ndarray]:
    """The ``pm.Data`` values of a fit: blocked rows for the kernel, or rows and question bounds for
    the scan fallback; plus the centring (``_centring``)."""
    if fast:
        values = block_values(layout)
    else:
        start, y = question_arrays(layout)
        values = {
            "x": layout.x,
            "forecaster": layout.forecaster,
            "f": layout.f,
            "z": np.ascontiguousarray(layout.z),
            "prev": layout.prev,
            "start": start,
            "y": y,
        }
    return values | _centring(layout, capacity) | {"variance_weights": _variance_weights(layout)}


def _placeholder_layout() -> TrainingLayout:
    """Two questions, three forecasts: the data a model is built with (replaced before sampling)."""
    data = ForecastData(
        question_index=[0, 0, 1],
        forecaster_key=[0, 1, 0],
        probability=[0.6, 0.4, 0.7],
        seconds_to_resolution=[2.0, 1.0, 1.0],
        outcome=[1, 0],
    )
    return training_layout(data)


def _global_start(variance_weights: np.ndarray) -> np.ndarray:
    """The sampled global coordinates (``_build_model``) at the MAP optimiser's start values."""
    raw = vector_from_population(default_population())
    i = GLOBAL_INDEX
    m0, mu_b = raw[i["m0"]], raw[i["mu_b"]]
    raw[i["m0"]], raw[i["mu_b"]] = -mu_b, m0 + mu_b  # m0' and mu_b' (the covariate slopes start at 0)
    log_q, log_q_event = raw[i["log_q"]], raw[i["log_q_event"]]
    a, b = variance_weights
    raw[i["log_q"]] = math.log(a * math.exp(log_q) + b * math.exp(log_q_event))  # log V
    raw[i["log_q_event"]] = log_q - log_q_event  # phi
    return raw


def _variance_weights(layout: TrainingLayout) -> np.ndarray:
    """(a, b): a question's latent gains about ``a q + b q_event`` over its forecasts (a: the mean
    share of its life they span, b: the mean number of steps between them)."""
    start, _ = question_arrays(layout)
    if len(start) < 2:
        return np.array([1.0, 1.0])
    first, last = start[:-1], start[1:] - 1
    a = float(np.mean(layout.f[first] - layout.f[last])) + 1e-3
    b = float(np.mean(last - first)) + 1e-3
    return np.array([a, b])


@dataclass
class CompiledModel:
    capacity: int
    fast: bool
    model: Any
    nutpie_model: Any  # None without nutpie
    stored: list[str]  # variables kept in the trace
    seconds: float


_MODELS: dict[tuple[int, bool], CompiledModel] = {}
MODELS_LOCK = threading.RLock()  # guards _MODELS and the compiled models' shared data (LogPosterior)


def is_compiled(capacity: int, fast: bool) -> bool:
    """Whether this process has compiled the model for ``capacity`` slots and that likelihood."""
    return (capacity, fast) in _MODELS


def _normal_logp(value, mean, sd):
    return -0.5 * ((value - mean) / sd) ** 2 - pt.log(sd)


def _build_model(capacity: int, fast: bool):
    """The model (same likelihood, same priors as the MAP's) with ``capacity`` forecaster
    slots, its data in ``pm.Data`` containers, in coordinates chosen for NUTS.

    The sampler moves in a shear of the model's parameters (unit Jacobian, except for the partially
    centred log alpha, whose Jacobian is in its potential), so that the posterior has
    no long thin ridges (each one found by sampling without the shear):

    - a centred bias is sampled as ``u_j = bias_j + zbar_j . gamma_bias + alpha_j m0'`` (what the
      forecaster's forecasts measure), a centred log noise as ``u_j = log_sigma_j + zbar_j .
      gamma_noise`` (``_centring``), else every effect moves with the covariate slopes;
    - ``m0' = -(mu_b + zbar_mean . gamma_bias)`` and ``mu_b' = m0 - m0'``: the outcomes pin ``m0'``,
      the prior on the questions' latents pins ``mu_b'`` (the latents' common level), and the
      forecasters' biases do not move with either; ``mu_s' = mu_s + zbar_mean . gamma_noise``.

    The global coordinates are further whitened, ``raw = g_center + g_scale @ s`` (data: the identity
    at first, then from the posterior mode's Hessian, ``_whitening``). The priors are Potentials on the
    model's parameters; Deterministics ``theta`` (the MAP vector of globals) and ``log_alpha``,
    ``bias``, ``log_sigma`` give the model's parameters."""
    import pymc as pm  # deferred: seconds to import, and only NUTS fits need it (not MAP workers)

    with pm.Model() as model:
        values = data_values(_placeholder_layout(), capacity, fast)
        shared = {name: pm.Data(name, value) for name, value in (values | whitening_identity(values)).items()}
        s = pm.Flat("s", shape=N_GLOBAL_COORDS)
        raw = shared["g_center"] + pt.dot(shared["g_scale"], s)
        gb = raw[N_GLOBALS : N_GLOBALS + N_COV]
        gs = raw[N_GLOBALS + N_COV :]
        m0_, mu_b_, mu_s_ = raw[GLOBAL_INDEX["m0"]], raw[GLOBAL_INDEX["mu_b"]], raw[GLOBAL_INDEX["mu_s"]]
        gv = {name: raw[i] for name, i in GLOBAL_INDEX.items()}
        gv["m0"] = m0_ + mu_b_
        gv["mu_b"] = -m0_ - pt.dot(shared["zbar_mean"][0], gb)
        gv["mu_s"] = mu_s_ - pt.dot(shared["zbar_mean"][1], gs)
        # (log V, phi) = (log(a q + b q_event), log q - log q_event): the forecasts pin V, the latent's
        # variance over a question's forecasts; a unit-Jacobian map of (log q, log q_event)
        a, b = shared["variance_weights"][0], shared["variance_weights"][1]
        log_v, phi = raw[GLOBAL_INDEX["log_q"]], raw[GLOBAL_INDEX["log_q_event"]]
        gv["log_q"] = log_v - pt.log(a + b * pt.exp(-phi))
        gv["log_q_event"] = gv["log_q"] - phi
        pm.Deterministic("theta", pt.concatenate([pt.stack([gv[n] for n in GLOBAL_NAMES]), gb, gs]))
        prior = 0.0
        for name, mean, sd, *_ in GLOBALS:
            if mean is not None:
                prior += _normal_logp(gv[name], mean, sd)
            else:  # log tau: Gamma(shape, rate) on tau, with the log transform's Jacobian
                prior += TAU_SHAPE * gv[name] - TAU_RATE * pt.exp(gv[name])
        prior += _normal_logp(gb, 0.0, SLOPE_SD).sum() + _normal_logp(gs, 0.0, SLOPE_SD).sum()
        pm.Potential("global_prior", prior)
        taus = {name: pt.exp(gv[f"log_{TAU_OF[name]}"]) for name in FORECASTER_PARAMS}
        means = {"log_alpha": 0.0, "bias": gv["mu_b"], "log_sigma": gv["mu_s"]}
        par = {}
        for i, name in enumerate(FORECASTER_PARAMS):
            # centred (c = 1): theta_j = u_j (sheared); non-centred: theta_j = mu + tau u_j
            # The sampler moves v, a per-slot affine map of u (``u_center``, ``u_scale``: data, constant
            # Jacobian); ``_effect_whitening`` sets them so that v has about unit scale at the mode.
            v = pm.Flat(f"{name}_u", shape=capacity)
            u = shared["u_center"][i] + shared["u_scale"][i] * v
            pm.Potential(f"{name}_u_prior", _normal_logp(u, 0.0, 1.0).sum())
            c = shared["centred"][i]
            if name == "log_alpha":
                # Partially centred (Papaspiliopoulos et al. 2003): theta_j = tau^(1 - w_j) u_j, with w_j
                # the share of the effect's posterior precision that comes from the data
                # (``sampling._partial_centring``, stored as c = w); w = 1 is centred, w = 0 non-centred,
                # and between the two u_j is about independent of tau a posteriori. Jacobian: tau^(1 - w_j).
                # tau^(1 - w) as exp((1 - w) log tau): a pow per slot and gradient was 2% of a gradient
                log_tau = gv[f"log_{TAU_OF[name]}"]
                par[name] = pm.Deterministic(name, pt.exp((1.0 - c) * log_tau) * u)
                correction = _normal_logp(par[name], 0.0, taus[name]) + (1.0 - c) * log_tau - _normal_logp(u, 0.0, 1.0)
                pm.Potential(f"{name}_centring", correction.sum())
                continue
            centred_value = u
            if name == "bias":
                centred_value = u - covariate_dot(shared["zbar"], gb) - pt.exp(par["log_alpha"]) * m0_
            elif name == "log_sigma":
                centred_value = u - covariate_dot(shared["zbar"], gs)
            par[name] = pm.Deterministic(name, c * centred_value + (1.0 - c) * (means[name] + taus[name] * u))
            correction = _normal_logp(par[name], means[name], taus[name]) - _normal_logp(u, 0.0, 1.0)
            pm.Potential(f"{name}_centring", (c * correction).sum())
        g = likelihood_globals(gv)
        likelihood = fast_loglik_graph if fast else _scan_loglik
        pm.Potential("likelihood", likelihood(g, gb, gs, par, shared))
    return model


def whitening_identity(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    capacity = values["centred"].shape[1]
    return {
        "g_center": _global_start(values["variance_weights"]),
        "g_scale": np.eye(N_GLOBAL_COORDS),
        "u_center": np.zeros((len(FORECASTER_PARAMS), capacity)),
        "u_scale": np.ones((len(FORECASTER_PARAMS), capacity)),
    }


def _scan_loglik(g: dict, gb, gs, par: dict, shared: dict):
    """``graph.loglik_graph`` itself (the fallback), inside an OpFromGraph so that its scan sees
    only explicit inputs (a scan would otherwise pull the model's random variables into its loop)."""
    names = ("x", "forecaster", "f", "z", "prev", "start", "y")
    g_in = {k: pt.dscalar(k) for k in g}
    par_in = {k: pt.dvector(k) for k in par}
    gb_in, gs_in = pt.dvector("gb"), pt.dvector("gs")
    data_in = {k: shared[k].type() for k in names}
    out = loglik_graph(g_in, gb_in, gs_in, par_in, {**data_in, "buckets": _one_block(data_in)})
    inputs = [*g_in.values(), gb_in, gs_in, *par_in.values(), *data_in.values()]
    op = OpFromGraph(inputs, [out])
    return op(*g.values(), gb, gs, *par.values(), *(shared[k] for k in names))


def _one_block(shared: dict) -> list:
    """For the fallback (``graph.loglik_graph``): every question in one padded block."""
    start, y = shared["start"], shared["y"]
    counts = start[1:] - start[:-1]
    steps = pt.arange(pt.max(counts))[:, None]
    inside = steps < counts[None, :]
    n = shared["x"].shape[0]
    idx = pt.switch(inside, start[:-1][None, :] + steps, n)
    empty = (pt.zeros((1, 0), dtype="int64") + n, pt.zeros((1, 0)), pt.zeros((0,), dtype="int64"), pt.zeros((0,)))
    return [(idx, pt.cast(inside, "float64"), start[1:] - 1, y)] + [empty] * (N_BUCKETS - 1)


def compiled_model(capacity: int) -> CompiledModel:
    """The compiled model for ``capacity`` forecasters (built on first use in this process)."""
    fast = bool(likelihood_check()["ok"])
    with MODELS_LOCK:
        cached = _MODELS.get((capacity, fast))
        if cached is not None:
            return cached
        started = time.monotonic()
        model = _build_model(capacity, fast)
        stored = [v.name for v in model.deterministics]
        try:
            import nutpie  # optional (and slow to import): PyMC's sampler without it
        except ImportError:  # PyMC's own sampler (compiles per fit)
            nutpie_model = None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nutpie_model = nutpie.compile_pymc_model(model, backend="numba", var_names=stored)
        compiled = CompiledModel(capacity, fast, model, nutpie_model, stored, time.monotonic() - started)
        _MODELS[(capacity, fast)] = compiled
        return compiled


class LogPosterior:
    """The compiled model's log posterior and its gradient on the sampler's flat vector, with the data
    of one fit (the model's shared variables: callers hold ``MODELS_LOCK``)."""

    def __init__(self, compiled: CompiledModel, values: dict[str, np.ndarray]):
        model = compiled.nutpie_model
        for name, value in values.items():
            shared = compiled.model[name]
            shared.set_value(np.asarray(value, dtype=shared.dtype))
        self.fn = model.logp_func
        self.expand = model.expand_func
        self.names, self.slices, self.shapes = model.shape_info
        self.n_dim = model.n_dim
        self.evaluations = 0

    def neg(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        logp, grad = self.fn(x)
        if not np.isfinite(logp):
            return 1e300, np.zeros_like(x)
        return -float(logp), -np.asarray(grad, dtype=float)

    def slice_of(self, name: str) -> slice:
        return self.slices[self.names.index(name)]

    def expanded(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.expand(x)
        flat = np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
        return {n: flat[sl].reshape(sh) for n, sl, sh in zip(self.names, self.slices, self.shapes, strict=True)}
