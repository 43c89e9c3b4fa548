"""Full-posterior fits of the model with NUTS (``fit(data, method="nuts")``). No Django import.

The model is the MAP fit's (same likelihood, same priors: ``nuts_model`` builds it for PyMC); what is
here is how to sample it fast (issue 4: 2,000 forecasters x 500 questions x 100,000 forecasts):

- Likelihood: the numba Kalman kernel (``kernel``, as an Op: ``kernel_op``) when ``likelihood_check``
  finds it equal to the scan graph (``graph.loglik_graph``), else that graph itself.
- Sampler: nutpie (Rust NUTS, chains in threads: works in a daemonic prefork Celery worker, where
  ``pm.sample(cores>1)`` cannot fork) on a PyMC model compiled by numba. Without nutpie, PyMC's NUTS
  on one core.
- Compiled once per process and capacity (``nuts_model``); ``warm_up`` compiles at worker start.
- Geometry (measured on the bench data; none of it changes the posterior): forecaster effects
  centred or not by how much data inform them, and sheared so that no effect moves with the
  covariate slopes or the latent's level (``nuts_model``); chains start from a point estimate
  (``_estimate``) with the global parameters whitened there (``_whitening``); there the posterior is
  about N(0, I), and nutpie integrates that normal exactly (``TRAJECTORY``, ``_nutpie_trajectory``).
- Diagnostics: arviz's rank-normalised split R-hat and bulk ESS over every model parameter
  (``diagnostics``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from .diagnostics import rhat_ess
from .fitted import BayesFit, forecaster_records, laplace_sds
from .kernel_op import likelihood_check
from .layout import TrainingLayout, training_layout
from .model import FORECASTER_PARAMS, TAU_OF, ForecastData, population_from_vector, warm_up_data
from .nuts_model import (
    GLOBAL_INDEX,
    MIN_CAPACITY,
    MODELS_LOCK,
    N_GLOBAL_COORDS,
    CompiledModel,
    LogPosterior,
    capacity_for,
    compiled_model,
    data_values,
    is_compiled,
    whitening_identity,
)

# Chains started at the mode (data-rich fits), in coordinates of about unit scale (``_effect_whitening``,
# ``_whitening``), where the posterior is close to a standard normal. nutpie's ``ExactNormal``
# trajectories integrate that standard normal exactly (a rotation) and leapfrog only the remainder, so
# the step is no longer set by the 6,000 dimensions' Gaussian curvature (d^-1/4): measured on the bench
# data, the step went from 0.24 to 0.42 and trees of 7 steps mix as well as 15 Euclidean ones did.
TRAJECTORY = "ExactNormal"
# data-rich fits; on the bench data at depth 3, the ESS of log tau_a was 195-207 at 0.5, 74-106 at 0.6, 83-126 at 0.7
TARGET_ACCEPT = 0.5
TARGET_ACCEPT_SPARSE = 0.9  # sparse data: funnels in the hierarchy want small steps
START_OFFSET = 1.0  # each coordinate starts one (Laplace) sd from the mode, up or down at random
INITIAL_STEP = 0.4  # the step size NUTS settles at there (nutpie's default start, 0.1, costs deep early trees)
# 7 leapfrog steps at most: every draw takes 7 (a trajectory of about 2.9 at a step of 0.42). With
# Euclidean trajectories (step 0.24) 7 steps were too short (ESS 26 on forecaster effects): 15 were needed.
MAX_TREE_DEPTH = 3
TUNE_FROM_MODE = 40  # tuning draws from the mode (with 80 and without the unit scales, one seed in two failed r-hat)
TUNE_FROM_PRIOR = 500
# L-BFGS iterations towards the mode before sampling (a start: the warm-up does the rest). With 120 the
# start could be short of the mode in (log q, log q_event): negative curvature there, and an ESS of 60
# on one bench seed of eight. Run to convergence (about 260), the joint mode's small tau_a slowed
# log tau_a instead (ESS 95-130).
INIT_ITERATIONS = 200


_SCALE_NAMES = {"log_alpha": "log_tau_a", "bias": "log_tau_b", "log_sigma": "log_tau_s"}


@dataclass
class _Estimate:
    x: np.ndarray  # the sampler's flat vector
    iterations: int
    converged: bool
    message: str
    neg_log_posterior: float
    unset: list[str]  # hierarchical scales left at their start (too few informed effects)


def _estimate(point: LogPosterior, values: dict[str, np.ndarray], max_iterations: int, rounds: int = 2) -> _Estimate:
    """A point estimate by L-BFGS with the hierarchical scales held fixed, then each scale set to the
    spread of its (data-informed) effects, ``rounds`` times.

    Not the joint mode: with centred effects the joint density grows without bound as a scale goes
    to 0 (every effect at the mean), which is where a free optimiser goes. ``map_fit.fit_map`` avoids
    it with a Laplace correction; here the scales are updated like an EM step instead."""
    sl = point.slice_of("s")
    center = values["g_center"]
    x = np.zeros(point.n_dim)
    # A scale whose effects are all non-centred has no such singularity: it is left free (and set).
    free = {scale for i, scale in enumerate(_SCALE_NAMES.values()) if not values["centred"][i].any()}
    iterations, res, unset = 0, None, [scale for scale in _SCALE_NAMES.values() if scale not in free]
    for round_ in range(rounds):
        bounds = [(None, None)] * point.n_dim
        for name in _SCALE_NAMES.values():
            if name in free:
                continue
            i = sl.start + GLOBAL_INDEX[name]
            bounds[i] = (x[i], x[i])
        res = minimize(
            point.neg,
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iterations // rounds, "maxcor": 20},
        )
        x, iterations = res.x, iterations + int(res.nit)
        if round_ == rounds - 1:
            break
        expanded = point.expanded(x)
        theta = expanded["theta"]
        for i, (name, scale) in enumerate(_SCALE_NAMES.items()):
            informed = values["centred"][i] > 0
            if informed.sum() < 10:
                continue
            mean = {"bias": theta[GLOBAL_INDEX["mu_b"]], "log_sigma": theta[GLOBAL_INDEX["mu_s"]]}.get(name, 0.0)
            spread = float(np.mean((expanded[name][informed] - mean) ** 2))
            x[sl.start + GLOBAL_INDEX[scale]] = 0.5 * math.log(max(spread, 1e-6)) - center[GLOBAL_INDEX[scale]]
            unset = [u for u in unset if u != scale]
    return _Estimate(x, iterations, bool(res.success), str(res.message), float(res.fun), unset)


def _laplace_at(point: LogPosterior, x: np.ndarray, layout: TrainingLayout) -> tuple[dict, np.ndarray, np.ndarray]:
    """The population, the (nf, 3) forecaster effects and their Laplace posterior sds
    (``fitted.laplace_sds``) at the sampler's vector ``x``."""
    nf = len(layout.keys)
    expanded = point.expanded(x)
    population = population_from_vector(expanded["theta"])
    params = np.column_stack([expanded[name][:nf] for name in FORECASTER_PARAMS])
    return population, params, laplace_sds(population, params, layout)


def _partial_centring(
    point: LogPosterior, x: np.ndarray, values: dict[str, np.ndarray], layout: TrainingLayout
) -> np.ndarray:
    """Sets each scale effect's centring ``w_j = 1 - sd_j^2 / tau_a^2`` (the Laplace posterior sd at
    the point estimate ``x``, as in ``fitted.laplace_sds``) in ``values["centred"]``, and returns ``x``
    in the new coordinates (the same parameter values).

    Measured on the bench data at a tree depth of 3: the spread ``tau_a`` reached an ESS of 26 with
    the effects centred by count, 5 with them all non-centred, and 67 partially centred."""
    nf = len(layout.keys)
    population, params, sds = _laplace_at(point, x, layout)
    tau = population["tau_a"]
    row = FORECASTER_PARAMS.index("log_alpha")
    centred = values["centred"].copy()
    centred[row, :nf] = np.clip(1.0 - (sds[:, row] / tau) ** 2, 0.0, 1.0)
    values["centred"] = centred
    moved = x.copy()
    moved[point.slice_of("log_alpha_u")][:nf] = params[:, row] / tau ** (1.0 - centred[row, :nf])
    return moved


def _effect_whitening(
    point: LogPosterior, x: np.ndarray, values: dict[str, np.ndarray], layout: TrainingLayout
) -> np.ndarray:
    """Sets ``values["u_center"]`` and ``values["u_scale"]`` to each forecaster effect's coordinate
    at the point estimate ``x`` and its Laplace posterior sd there (``fitted.laplace_sds``, carried
    through the centring), and returns ``x`` in the new coordinates (0 for every effect: the same
    parameter values). ``point`` holds ``values`` with the identity map.

    Why: nutpie starts its mass matrix from the gradient at the first point, which is right only for
    coordinates of about unit scale; a centred effect's scale is its posterior sd (0.05-0.3 here).
    Unit-scale coordinates let the chains start at the mode with a fitting mass matrix, so the
    warm-up's first trees are not twice as long and fewer tuning draws do."""
    nf = len(layout.keys)
    population, _, sds = _laplace_at(point, x, layout)
    moved = x.copy()
    for i, name in enumerate(FORECASTER_PARAMS):
        tau = population[TAU_OF[name]]
        c = values["centred"][i, :nf]
        # u's sd: the effect's, divided by what multiplies u (tau^(1 - c) for log alpha; 1 centred, tau not)
        divisor = tau ** (1.0 - c) if name == "log_alpha" else np.where(c > 0, 1.0, tau)
        sl = point.slice_of(f"{name}_u")
        values["u_center"][i, :nf] = x[sl][:nf]
        values["u_scale"][i, :nf] = sds[:, i] / divisor
        moved[sl.start : sl.start + nf] = 0.0  # padding slots keep the identity map
    return moved


def _whitening(
    point: LogPosterior, x: np.ndarray, center: np.ndarray, unset: list[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """``(g_center, g_scale)`` that make the global coordinates about independent with unit variance
    at the mode ``x``: the Hessian of the log posterior in the globals (finite differences of the
    gradient), with the forecaster effects integrated out, eigenvalues floored, and its inverse
    square root."""
    sl = point.slice_of("s")
    base = point.neg(x)[1]
    h = 1e-5
    rows = np.empty((N_GLOBAL_COORDS, len(x)))
    for i in range(N_GLOBAL_COORDS):
        moved = x.copy()
        moved[sl.start + i] += h
        rows[i] = (point.neg(moved)[1] - base) / h
    # The globals' curvature with the forecaster effects integrated out, not held fixed: the effects'
    # coordinates have about unit curvature (_effect_whitening), so the Schur complement is
    # H_gg - H_gu H_ug. (Held fixed, the effects made log tau_a and log eta look twice as narrow as
    # they are: ESS 65-98 in three bench seeds of seven.)
    cross = np.delete(rows, np.arange(sl.start, sl.stop), axis=1)
    hessian = rows[:, sl] - cross @ cross.T
    hessian = 0.5 * (hessian + hessian.T)
    for name in unset:  # not estimated: leave that coordinate alone
        hessian[GLOBAL_INDEX[name], :] = hessian[:, GLOBAL_INDEX[name]] = 0.0
        hessian[GLOBAL_INDEX[name], GLOBAL_INDEX[name]] = 1.0
    eigenvalues, vectors = np.linalg.eigh(hessian)
    eigenvalues = np.maximum(eigenvalues, 0.25)  # a direction the point does not pin: a prior-like scale
    scale = vectors / np.sqrt(eigenvalues)
    return center + x[sl], scale


# --- fitting ----------------------------------------------------------------------------------------


def _prepare(data: ForecastData) -> tuple[TrainingLayout, int, CompiledModel, dict[str, np.ndarray], bool]:
    layout = training_layout(data)
    capacity = capacity_for(len(layout.keys))
    fresh = not is_compiled(capacity, bool(likelihood_check()["ok"]))
    compiled = compiled_model(capacity)
    values = data_values(layout, capacity, compiled.fast)
    values |= whitening_identity(values)
    return layout, capacity, compiled, values, fresh


# The diagnostics a run must pass (the app's BAYES_MAX_RHAT / BAYES_MIN_ESS defaults): below them,
# fit_nuts samples more chains (a fresh warm-up each, other seeds) and pools them, up to MAX_ROUNDS.
MAX_RHAT = 1.05
MIN_ESS = 100.0
MAX_ROUNDS = 3


def fit_nuts(
    data: ForecastData,
    *,
    draws: int,
    tune: int | None,
    chains: int,
    random_seed: int | None,
    max_rhat: float = MAX_RHAT,
    min_ess: float = MIN_ESS,
    max_rounds: int = MAX_ROUNDS,
) -> BayesFit:
    """Full posterior with NUTS (nutpie when installed, else PyMC's sampler on one core): posterior
    means in the MAP fit's structure, arviz diagnostics (``max_rhat``, ``min_ess``, ``divergences``).

    With data-rich forecasters the chains start near a point estimate (``_estimate``,
    ``INIT_ITERATIONS``), in coordinates of about unit scale there (``_partial_centring``,
    ``_effect_whitening``, ``_whitening``); all of these only shorten the warm-up (``tune=None``:
    ``TUNE_FROM_MODE`` draws, else ``TUNE_FROM_PRIOR``): the posterior is the same.

    When the chains fall short of ``max_rhat`` / ``min_ess`` (a slow direction in one data set in
    ten), more chains are run from the same start with other seeds and pooled with the first, up to
    ``max_rounds`` rounds in all: every chain targets the same posterior, so pooling is sound, and
    the diagnostics are taken over all of them (``rounds`` in the diagnostics says how many ran)."""
    started = time.monotonic()
    layout, capacity, compiled, values, fresh = _prepare(data)
    nf = len(layout.keys)
    init = None
    extra: dict[str, Any] = {"init": "prior", "target_accept": TARGET_ACCEPT_SPARSE}
    centred = values["centred"][:, :nf]
    if compiled.nutpie_model is not None and centred[FORECASTER_PARAMS.index("bias")].mean() >= 0.5:
        # Data-rich (most forecaster effects centred): the joint mode is a good start. With sparse
        # data the hierarchy's joint mode sits in the funnel's neck: start from the prior instead.
        with MODELS_LOCK:
            point = LogPosterior(compiled, values)
            res = _estimate(point, values, INIT_ITERATIONS)
            evaluations = point.evaluations
            init = _partial_centring(point, res.x, values, layout)
            point = LogPosterior(compiled, values)  # the new centring
            init = _effect_whitening(point, init, values, layout)
            point = LogPosterior(compiled, values)  # the effects' new coordinates
            values["g_center"], values["g_scale"] = _whitening(point, init, values["g_center"], res.unset)
            init[point.slice_of("s")] = 0.0
            extra = {
                "init": "mode",
                "target_accept": TARGET_ACCEPT,
                "init_iterations": res.iterations,
                "init_evaluations": evaluations + point.evaluations,
                "max_tree_depth": MAX_TREE_DEPTH,
            }
    if tune is None:
        tune = TUNE_FROM_MODE if init is not None else TUNE_FROM_PRIOR
    sampling_started = time.monotonic()
    trace: dict[str, np.ndarray] = {}
    stats: dict[str, Any] = {}
    rounds = 0
    while rounds < max(max_rounds, 1):
        more, more_stats = _sample(
            compiled,
            values,
            init,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=None if random_seed is None or rounds == 0 else random_seed + 7919 * rounds,
            target_accept=extra["target_accept"],
        )
        trace = {name: np.concatenate([trace[name], more[name]], axis=0) if trace else more[name] for name in more}
        stats = {**more_stats, "divergences": stats.get("divergences", 0) + more_stats.get("divergences", 0)}
        worst_rhat, lowest_ess = rhat_ess(trace, nf)
        rounds += 1
        if worst_rhat <= max_rhat and lowest_ess >= min_ess:
            break
    sampling_seconds = time.monotonic() - sampling_started
    result = _result(trace, layout, data, method="nuts")
    result.duration_seconds = time.monotonic() - started
    result.diagnostics = {
        "max_rhat": worst_rhat,
        "min_ess": lowest_ess,
        **stats,
        "draws": draws,
        "tune": tune,
        "chains": chains * rounds,
        "rounds": rounds,
        "likelihood": "kalman-numba" if compiled.fast else "pytensor-scan",
        "capacity": capacity,
        "centred": int(centred.sum()),
        **extra,
        "compile_seconds": compiled.seconds if fresh else 0.0,
        "sampling_seconds": sampling_seconds,
    }
    return result


def _result(trace: dict[str, np.ndarray], layout: TrainingLayout, data: ForecastData, *, method: str) -> BayesFit:
    """A ``BayesFit`` of posterior means (over chains and draws) of the model's parameters."""
    nf = len(layout.keys)
    population = population_from_vector(np.asarray(trace["theta"]).mean(axis=(0, 1)))
    draws = np.stack([np.asarray(trace[name])[..., :nf] for name in FORECASTER_PARAMS], axis=-1)
    params = draws.mean(axis=(0, 1))
    # Posterior sds from the draws; a point estimate (one draw) takes the Laplace approximation's.
    sds = draws.std(axis=(0, 1)) if draws.shape[0] * draws.shape[1] > 1 else laplace_sds(population, params, layout)
    forecasters = forecaster_records(layout, params, sds)
    return BayesFit(
        population=population,
        forecasters=forecasters,
        method=method,
        n_questions=data.n_questions,
        n_forecasters=nf,
        n_forecasts=len(layout.x),
    )


def _sample(
    compiled: CompiledModel,
    values: dict,
    init: np.ndarray | None,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    target_accept: float,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``{stored variable: (chains, draws, ...) array}`` and the sampler's statistics."""
    if compiled.nutpie_model is not None:
        import nutpie  # optional, slow to import: present since compiled_model found it

        model = compiled.nutpie_model.with_data(**values)
        if init is not None:
            model = dataclasses.replace(model, initial_point_func=_start_near(init))
        trajectory = TRAJECTORY if init is not None else "Euclidean"  # ExactNormal: only where ~N(0, I)
        with _nutpie_trajectory(trajectory) as applied:
            trace = nutpie.sample(
                model,
                draws=draws,
                tune=tune,
                chains=chains,
                cores=max(1, min(chains, os.cpu_count() or 1)),  # threads: fine in a daemonic worker
                seed=random_seed,
                progress_bar=False,
                save_warmup=False,
                target_accept=target_accept,
                **({"initial_step": INITIAL_STEP, "maxdepth": MAX_TREE_DEPTH} if init is not None else {}),
            )
        sample_stats = trace.sample_stats
        steps = np.asarray(sample_stats["n_steps"])
        stats = {
            "sampler": "nutpie",
            "trajectory": applied[0],
            "divergences": int(np.asarray(sample_stats["diverging"]).sum()),
            "step_size": float(np.asarray(sample_stats["step_size"]).mean()),
            "mean_leapfrog_steps": float(steps.mean()),
        }
    else:
        import pymc as pm  # deferred like nuts_model's: only NUTS fits pay its import

        with compiled.model:
            pm.set_data(values)
            trace = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=1,  # pm.sample cannot fork inside a daemonic (prefork) worker
                nuts_sampler="pymc",
                random_seed=random_seed,
                progressbar=False,
                compute_convergence_checks=False,
                target_accept=target_accept,
            )
        stats = {"sampler": "pymc", "divergences": int(np.asarray(trace.sample_stats["diverging"]).sum())}
    return {name: np.asarray(trace.posterior[name]) for name in compiled.stored}, stats


_TRAJECTORY_LOCK = threading.Lock()


class _SettingsWithTrajectory:
    """Stands in for nutpie's ``_lib`` inside ``nutpie.sample``: its NUTS settings get the trajectory
    ``kind`` (``nutpie.sample`` takes no such argument: its ``**kwargs`` reach ``settings.update``, which
    does not know the field, while ``update_settings`` with the whole settings does)."""

    def __init__(self, lib: Any, kind: str, applied: list[str]):
        self._lib, self._kind, self._applied = lib, kind, applied

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._lib, name)
        if name != "PyNutsSettings":
            return value
        kind, applied = self._kind, self._applied

        class Settings:
            @staticmethod
            def Diag(seed):  # nutpie's name
                settings = value.Diag(seed)
                fields = settings.as_dict()["settings"]
                if "trajectory_kind" in fields:  # an older nutpie: Euclidean only
                    fields["trajectory_kind"] = kind
                    settings.update_settings(fields)
                    applied[0] = kind
                return settings

        return Settings


@contextlib.contextmanager
def _nutpie_trajectory(kind: str):
    """Within the block, ``nutpie.sample`` integrates trajectories of ``kind`` (nutpie's
    ``trajectory_kind``: "Euclidean", its default, or "ExactNormal"). Yields a one-item list holding
    the kind the sampler was given ("Euclidean" if this nutpie has no such setting). The swap is
    process-wide while the block runs (a ``nutpie.sample`` call from another thread meanwhile would get
    it too: the service runs one fit at a time per worker process); outside the block every caller
    (the bench's naive model) has nutpie's default. A lock keeps two fits from swapping it at once."""
    applied = ["Euclidean"]
    if kind == "Euclidean":
        yield applied
        return
    import nutpie.sample  # noqa: F401 (the module: ``nutpie.sample`` the attribute is the function)

    module = sys.modules["nutpie.sample"]
    with _TRAJECTORY_LOCK:
        lib = module._lib
        module._lib = _SettingsWithTrajectory(lib, kind, applied)
        try:
            yield applied
        finally:
            module._lib = lib


def _start_near(init: np.ndarray):
    """Each chain's start: ``init`` moved by ``START_OFFSET`` up or down in every coordinate.

    nutpie's PyMC models ignore ``nutpie.sample(init_mean=...)`` and start from PyMC's initial point
    with a uniform jitter in [-1, 1]: far out in the tails for a forecaster effect of sd 0.05. And
    nutpie's first mass matrix is ``1 / |gradient|`` at the start, which is the right variance where
    a unit-scale coordinate is one sd from the mode: hence the offset of one, in every coordinate."""

    def start(seed=None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return init + START_OFFSET * rng.choice([-1.0, 1.0], size=init.shape)

    return start


def warm_up(n_forecasters: int = MIN_CAPACITY) -> float:
    """Check the kernel, then compile the model for ``n_forecasters`` (pass about the number of
    forecasters a fit will see: one compiled model serves up to 41% more) and every function a fit
    calls, on a tiny data set, so that a worker's first fit compiles nothing. numba's and pytensor's
    caches on disk make a later process's warm-up faster. Returns the seconds it took."""
    started = time.monotonic()
    data = warm_up_data()
    fit_nuts(data, draws=5, tune=5, chains=1, random_seed=0, max_rounds=1)
    compiled = compiled_model(capacity_for(n_forecasters))
    if compiled.nutpie_model is not None:  # the point functions compile on their first call
        layout = training_layout(data)
        values = data_values(layout, compiled.capacity, compiled.fast)
        values |= whitening_identity(values)
        with MODELS_LOCK:
            point = LogPosterior(compiled, values)
            point.neg(np.zeros(point.n_dim))
            point.expanded(np.zeros(point.n_dim))
    return time.monotonic() - started
