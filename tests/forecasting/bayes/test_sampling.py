"""The fast likelihood behind the Bayesian fits (forecasting/bayes/kernel.py, kernel_op.py): the numba
Kalman kernel must compute exactly the model's likelihood (graph.loglik_graph), value and gradient,
wherever an optimiser or a sampler may take it; and the NUTS sampler's coordinates and diagnostics
(forecasting/bayes/sampling.py, diagnostics.py)."""

import math
import warnings

import numpy as np
import pytest

from forecasting import bayes
from forecasting.bayes import map_fit, sampling
from forecasting.bayes.diagnostics import _rank_diagnostics
from forecasting.bayes.kernel_op import _run_likelihood_check
from forecasting.bayes.layout import training_layout
from forecasting.bayes.model import FORECASTER_PARAMS, population_from_vector, vector_from_population
from forecasting.bayes.nuts_model import LogPosterior
from tests.forecasting.bayes.synthetic import DAY, FORECASTERS, simulate


@pytest.fixture(scope="module")
def small_layout():
    data = simulate(np.random.default_rng(3), 30, per_question=(3, 6))
    return training_layout(data)


def _point(layout, rng, spread=0.3):
    nf = len(layout.keys)
    globals_ = vector_from_population(bayes.default_population())
    effects = rng.normal(0, spread, len(FORECASTER_PARAMS) * nf)
    return np.r_[globals_ + rng.normal(0, spread, len(globals_)), effects]


def test_the_kernel_matches_the_models_likelihood_and_gradient():
    check = _run_likelihood_check()
    assert check["ok"], check
    assert check["value_error"] < 1e-9 and check["grad_error"] < 1e-8


def test_the_map_objective_is_the_same_on_the_kernel_and_on_the_scan(small_layout):
    nf = len(small_layout.keys)
    rng = np.random.default_rng(0)
    for _ in range(2):
        theta = _point(small_layout, rng)
        fast = map_fit._map_objective(True)(theta, nf, *map_fit._map_values(small_layout, True))
        slow = map_fit._map_objective(False)(theta, nf, *map_fit._map_values(small_layout, False))
        assert float(fast[0]) == pytest.approx(float(slow[0]), rel=1e-10)
        np.testing.assert_allclose(fast[1], slow[1], rtol=1e-7, atol=1e-7)


def test_the_kernel_stays_finite_at_the_edge_of_the_optimisers_box(small_layout):
    """An L-BFGS trial step can land on the bounds (noise slopes at +5 on every covariate): the
    objective must stay finite there, or the line search stalls at its first step."""
    nf = len(small_layout.keys)
    bounds = map_fit._bounds(nf)
    theta = np.array([hi for _, hi in bounds])
    value, grad = map_fit._map_objective(True)(theta, nf, *map_fit._map_values(small_layout, True))
    assert math.isfinite(float(value)) and np.all(np.isfinite(grad))


def test_a_cold_map_fit_moves_far_from_its_start():
    data = simulate(np.random.default_rng(8), 120)
    result = bayes.fit(data, method="map")
    assert result.diagnostics["likelihood"] == "kalman-numba"
    assert result.diagnostics["converged"] and result.diagnostics["iterations"] > 20
    # The sharp forecaster's noise is found well below the sloppy one's (truth: 0.3 vs 2.5).
    sharp, sloppy = result.forecasters["sharp"], result.forecasters["sloppy"]
    assert sharp["log_sigma"] < sloppy["log_sigma"] - 0.5
    # Posterior sds come with every fitted forecaster, smaller than the population's spread.
    for record in (sharp, sloppy):
        assert 0 < record["log_sigma_sd"] < result.population["tau_s"]


def test_a_nuts_fit_stores_posterior_sds_from_its_draws():
    data = simulate(np.random.default_rng(11), 12, forecasters=dict(list(FORECASTERS.items())[:5]), per_question=(3, 4))
    result = bayes.fit(data, method="nuts", draws=40, tune=40, chains=2, random_seed=2)
    record = result.forecasters["sharp"]
    assert all(record[f"{name}_sd"] > 0 for name in FORECASTER_PARAMS)
    _, low, high = result.aggregate(["sharp"], [0.8], [5 * DAY], life_seconds=10 * DAY)
    assert low < high


def test_partial_centring_moves_the_sampler_not_the_parameters():
    """NUTS samples each forecaster's log alpha partially centred, by how much its data inform it:
    changing coordinates must leave every model parameter where it was."""
    data = simulate(np.random.default_rng(5), 40, per_question=(3, 6))
    layout, _, compiled, values, _ = sampling._prepare(data)
    nf = len(layout.keys)
    point = LogPosterior(compiled, values)
    x = np.random.default_rng(1).normal(0.0, 0.3, point.n_dim)
    before = point.expanded(x)
    moved = sampling._partial_centring(point, x, values, layout)
    after = LogPosterior(compiled, values).expanded(moved)
    np.testing.assert_allclose(after["theta"], before["theta"])
    for name in FORECASTER_PARAMS:
        np.testing.assert_allclose(after[name][:nf], before[name][:nf], atol=1e-12)
    centring = values["centred"][FORECASTER_PARAMS.index("log_alpha"), :nf]
    assert np.all((centring > 0) & (centring < 1))
    # The more forecasts inform a forecaster's scale, the more centred it is sampled.
    assert np.corrcoef(layout.counts, centring)[0, 1] > 0.5


def test_unit_scale_coordinates_move_the_sampler_not_the_parameters():
    """From the mode, NUTS moves each forecaster effect in units of its Laplace sd around the mode:
    the parameters stay where they were, the sampler's coordinates are 0 there, and a better-informed
    effect gets a smaller unit."""
    data = simulate(np.random.default_rng(5), 40, per_question=(3, 6))
    layout, _, compiled, values, _ = sampling._prepare(data)
    nf = len(layout.keys)
    x = np.random.default_rng(1).normal(0.0, 0.3, LogPosterior(compiled, values).n_dim)
    x = sampling._partial_centring(LogPosterior(compiled, values), x, values, layout)
    point = LogPosterior(compiled, values)
    before = point.expanded(x)
    moved = sampling._effect_whitening(point, x, values, layout)
    after = LogPosterior(compiled, values).expanded(moved)
    np.testing.assert_allclose(after["theta"], before["theta"])
    for i, name in enumerate(FORECASTER_PARAMS):
        np.testing.assert_allclose(after[name][:nf], before[name][:nf], atol=1e-12)
        assert np.all(moved[point.slice_of(f"{name}_u")][:nf] == 0.0)
        assert np.all(values["u_scale"][i, :nf] > 0)
        assert np.all(values["u_scale"][i, nf:] == 1.0)  # padding slots keep the identity
    # A centred bias is sampled as itself (plus a shift): its unit is its Laplace posterior sd.
    population = population_from_vector(before["theta"])
    params = np.column_stack([before[name][:nf] for name in FORECASTER_PARAMS])
    sds = bayes.laplace_sds(population, params, layout)
    bias = FORECASTER_PARAMS.index("bias")
    centred = values["centred"][bias, :nf] == 1.0
    assert centred.sum() >= 5
    np.testing.assert_allclose(values["u_scale"][bias, :nf][centred], sds[centred, bias])


def test_nutpie_starts_each_chain_where_the_fit_says():
    """nutpie ignores ``init_mean`` for PyMC models; the fit replaces the model's initial point, one
    Laplace sd up or down from the mode in every coordinate. A first transition of one tiny step
    must start there."""
    import dataclasses

    import nutpie

    data = simulate(np.random.default_rng(5), 40, per_question=(3, 6))
    _, _, compiled, values, _ = sampling._prepare(data)
    init = np.random.default_rng(2).normal(0.0, 0.5, compiled.nutpie_model.n_dim)
    start = sampling._start_near(init)
    np.testing.assert_allclose(np.abs(start(7) - init), sampling.START_OFFSET)
    assert not np.array_equal(start(7), start(8))
    model = dataclasses.replace(compiled.nutpie_model.with_data(**values), initial_point_func=start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = nutpie.sample(
            model,
            draws=1,
            tune=1,
            chains=1,
            seed=3,
            progress_bar=False,
            store_unconstrained=True,
            initial_step=1e-9,
            maxdepth=1,
        )
    first = np.asarray(trace.warmup_sample_stats["unconstrained_draw"])[0, 0]
    assert np.max(np.abs(first - init)) == pytest.approx(sampling.START_OFFSET, abs=1e-6)


def test_vectorised_diagnostics_equal_arviz():
    """A run is failed on its max r-hat and min ESS: the vectorised formulas must give arviz's figures,
    including for tied and constant draws."""
    import arviz as az

    rng = np.random.default_rng(4)
    draws = rng.normal(size=(2, 120, 12))
    draws[1, :, 0] += 1.5  # chains that disagree
    draws[:, :, 1] = np.cumsum(draws[:, :, 1], axis=1)  # a sticky chain
    draws[:, :, 2] = np.round(draws[:, :, 2])  # ties
    draws[:, :, 3] = 2.0  # constant
    rhat, ess = _rank_diagnostics(draws)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # arviz on the constant column: 0 / 0
        expected_rhat = np.asarray(az.rhat(draws, chain_axis=0, draw_axis=1))
        expected_ess = np.asarray(az.ess(draws, chain_axis=0, draw_axis=1, method="bulk"))
    live = slice(0, 3), slice(4, None)
    for part in live:
        np.testing.assert_allclose(rhat[part], expected_rhat[part], rtol=1e-10)
        np.testing.assert_allclose(ess[part], expected_ess[part], rtol=1e-10)
    assert rhat[0] > 1.1 and rhat[4] < 1.05


def test_nuts_runs_more_chains_until_the_diagnostics_pass_or_the_rounds_run_out():
    data = simulate(np.random.default_rng(11), 10, forecasters=dict(list(FORECASTERS.items())[:4]), per_question=(3, 4))
    passing = sampling.fit_nuts(data, draws=30, tune=30, chains=2, random_seed=3, min_ess=0.0, max_rhat=math.inf)
    assert (passing.diagnostics["rounds"], passing.diagnostics["chains"]) == (1, 2)
    # an unreachable target: every round runs, and the diagnostics are those of all chains pooled
    pooled = sampling.fit_nuts(data, draws=30, tune=30, chains=2, random_seed=3, min_ess=1e9, max_rounds=3)
    assert (pooled.diagnostics["rounds"], pooled.diagnostics["chains"]) == (3, 6)
    assert pooled.diagnostics["min_ess"] > passing.diagnostics["min_ess"]


def test_exact_normal_trajectories_apply_inside_the_block_only():
    """From the mode the sampler's coordinates are about N(0, I): nutpie then integrates that normal
    exactly (``trajectory_kind="ExactNormal"``), which ``nutpie.sample`` has no argument for. The
    fit swaps nutpie's settings for the one call, and every other caller (the bench's naive
    ``pm.sample()``) keeps nutpie's default."""
    import sys

    import nutpie.sample  # noqa: F401

    module = sys.modules["nutpie.sample"]
    lib = module._lib
    with sampling._nutpie_trajectory("ExactNormal") as applied:
        settings = module._lib.PyNutsSettings.Diag(0).as_dict()["settings"]
        assert settings["trajectory_kind"] == "ExactNormal" and applied == ["ExactNormal"]
        assert settings["maxdepth"] == 10  # nothing else changed
    assert module._lib is lib
    assert lib.PyNutsSettings.Diag(0).as_dict()["settings"]["trajectory_kind"] == "Euclidean"
    with pytest.raises(RuntimeError), sampling._nutpie_trajectory("ExactNormal"):
        raise RuntimeError
    assert module._lib is lib
    with sampling._nutpie_trajectory("Euclidean") as applied:
        assert module._lib is lib and applied == ["Euclidean"]


def test_a_fit_from_the_mode_samples_with_exact_normal_trajectories():
    data = simulate(np.random.default_rng(5), 40, per_question=(3, 6))
    result = sampling.fit_nuts(data, draws=30, tune=30, chains=2, random_seed=1, max_rounds=1)
    d = result.diagnostics
    assert d["init"] == "mode" and d["trajectory"] == "ExactNormal"
    assert d["max_tree_depth"] == sampling.MAX_TREE_DEPTH
    assert d["mean_leapfrog_steps"] <= 2**sampling.MAX_TREE_DEPTH - 1
    assert np.isfinite(d["max_rhat"])
