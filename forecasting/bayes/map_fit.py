"""The point estimate (``fit(data, method="map")``): the posterior's mode by L-BFGS on pytensor
gradients, the hierarchical variances through a Laplace approximation of the forecaster effects
(so that they do not collapse to 0); and the worker warm-up that compiles it. No Django import."""

from __future__ import annotations

import contextlib
import functools
import math
import time

import numpy as np
import pytensor
import pytensor.tensor as pt
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from .fitted import BayesFit, forecaster_records, laplace_sds, prior_fit
from .graph import covariate_dot, flat_inputs, input_tensors, input_values, likelihood_globals, loglik_graph
from .kernel_op import block_tensors, block_values, fast_loglik_graph, likelihood_check
from .layout import TrainingLayout, training_layout
from .model import (
    FORECASTER_BOUNDS,
    FORECASTER_PARAMS,
    GLOBAL_NAMES,
    GLOBALS,
    N_COV,
    N_GLOBALS,
    SLOPE_SD,
    TAU_RATE,
    TAU_SHAPE,
    ForecastData,
    default_population,
    population_from_vector,
    vector_from_population,
    warm_up_data,
)


def _fast_likelihood() -> bool:
    """Whether the numba Kalman kernel (``kernel_op``) computes the likelihood (``likelihood_check``)."""
    return bool(likelihood_check()["ok"])


@functools.cache
def _map_objective(fast: bool):
    """Compiled ``(theta, nf, *data) -> (negative log posterior, gradient)``; built once per process.

    ``fast``: the likelihood by the numba kernel (``kernel_op``) (data: ``_map_values``), else by
    ``loglik_graph``'s scan (the same function, ~10x slower)."""
    theta = pt.dvector("theta")
    nf = pt.lscalar("nf")
    inputs = input_tensors()
    gv = {name: theta[i] for i, name in enumerate(GLOBAL_NAMES)}
    gb = theta[N_GLOBALS : N_GLOBALS + N_COV]
    gs = theta[N_GLOBALS + N_COV : N_GLOBALS + 2 * N_COV]
    o = N_GLOBALS + 2 * N_COV
    par = {name: theta[o + i * nf : o + (i + 1) * nf] for i, name in enumerate(FORECASTER_PARAMS)}
    g = likelihood_globals(gv)
    if fast:
        blocks = block_tensors()
        loglik = fast_loglik_graph(g, gb, gs, par, blocks)
        data_inputs = [inputs["forecaster"], inputs["z"], *blocks.values()]
    else:
        loglik = loglik_graph(g, gb, gs, par, inputs)
        data_inputs = flat_inputs(inputs)

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
    covariate_prec = pt.exp(-2.0 * covariate_dot(z, gs))  # (not z.dot: see covariate_dot)
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
    for name in FORECASTER_PARAMS:
        log_tau = gv[taus[name]]
        tau = pt.exp(log_tau)
        logprior += (-0.5 * ((par[name] - means[name]) / tau) ** 2).sum()
        logprior += (-0.5 * pt.log1p(info[name] * tau**2)).sum()
        logprior += TAU_SHAPE * log_tau - TAU_RATE * tau  # Gamma(2, 2) on tau, with the log Jacobian
    for name, mean, sd, *_ in GLOBALS:
        if mean is not None:
            logprior += -0.5 * ((gv[name] - mean) / sd) ** 2
    logprior += -0.5 * ((gb / SLOPE_SD) ** 2).sum() - 0.5 * ((gs / SLOPE_SD) ** 2).sum()
    objective = -(loglik + logprior)
    grad = pytensor.grad(objective, theta)
    return pytensor.function([theta, nf, *data_inputs], [objective, grad], on_unused_input="ignore")


def _map_values(layout: TrainingLayout, fast: bool) -> list:
    """The data arguments of ``_map_objective(fast)``."""
    xsq = layout.x**2
    if not fast:
        return [xsq, *input_values(layout)]
    blocks = block_values(layout)
    return [xsq, layout.forecaster, layout.z, *(blocks[name] for name in block_tensors())]


def _bounds(nf: int) -> list[tuple[float, float]]:
    bounds = [(g[4], g[5]) for g in GLOBALS] + [(-5.0, 5.0)] * (2 * N_COV)
    for lo_hi in FORECASTER_BOUNDS:
        bounds.extend([lo_hi] * nf)
    return bounds


def fit_map(data: ForecastData, *, previous: BayesFit | None = None, max_iterations: int = 3000) -> BayesFit:
    """The posterior's mode by L-BFGS (``fit(data, method="map")``); ``previous`` warm-starts it."""
    started = time.monotonic()
    if data.n_forecasts == 0:
        result = prior_fit()
        result.method = "map"
        result.n_questions = data.n_questions
        return result
    layout = training_layout(data)
    nf = len(layout.keys)
    # (a previous fit may predate a parameter: that one starts from its default)
    start_pop = default_population() | (previous.population if previous is not None else {})
    theta0 = np.empty(N_GLOBALS + 2 * N_COV + len(FORECASTER_PARAMS) * nf)
    theta0[: N_GLOBALS + 2 * N_COV] = vector_from_population(start_pop)
    prior_arrays = previous._arrays(layout.keys) if previous is not None else None
    o = N_GLOBALS + 2 * N_COV
    for i, name in enumerate(FORECASTER_PARAMS):
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
    population = population_from_vector(theta)
    params = theta[o:].reshape(len(FORECASTER_PARAMS), nf).T
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


def _diagonal_scale(fun, theta0: np.ndarray, bounds: list, counts: np.ndarray) -> np.ndarray:
    """Square roots of the objective's curvature along each coordinate at ``theta0`` (at least 1): by
    finite differences of the gradient for the global parameters, and ``sqrt(forecasts + 4)`` for each
    forecaster effect (the data's information grows with the forecaster's forecasts)."""
    n_globals = N_GLOBALS + 2 * N_COV
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
    scale[n_globals:] = np.tile(per_forecaster, len(FORECASTER_PARAMS))
    return scale


@contextlib.contextmanager
def single_threaded_blas():
    """numpy's and scipy's OpenBLAS on one thread while a fit runs (``fitting.fit``).

    Their BLAS calls here are small (L-BFGS-B's products of a 30 x 6,000 history, under 1 ms an
    iteration), and OpenBLAS splits them over a thread pool whose worker then spins between calls:
    on the 2-core host the MAP used 2.5-2.9 s of CPU for 1.4-1.6 s of wall time, and whenever the
    other core was busy (another job, the other NUTS chain) the MAP took 3.5-6 s instead of 1.5
    (docs/bayes.md, Speed). The limit is process-wide while the block runs (the worker runs one fit
    at a time) and restored after it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --- worker start -----------------------------------------------------------------------------------


def warm_up() -> float:
    """Compile the MAP objective (pytensor's C code, cached on disk) and run it on a tiny data set,
    so that a worker's first real fit does not pay for compilation. Returns the seconds it took."""
    started = time.monotonic()
    fit_map(warm_up_data(), previous=None, max_iterations=5)
    return time.monotonic() - started
