"""The Bayesian aggregation model (forecasting/bayes/), on synthetic data drawn from its own story."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from forecasting import bayes, evaluation
from forecasting.bayes.fitted import _filter
from forecasting.bayes.model import covariates
from tests.forecasting.bayes.synthetic import DAY, FORECASTERS, simulate


@pytest.fixture(scope="module")
def data():
    return simulate(np.random.default_rng(20240611), 250)


@pytest.fixture(scope="module")
def map_fit(data):
    return bayes.fit(data, method="map")


def test_map_fit_recovers_the_better_forecaster(map_fit):
    assert map_fit.method == "map"
    assert map_fit.diagnostics["converged"], map_fit.diagnostics
    sharp = map_fit.forecasters["sharp"]["log_sigma"]
    sloppy = map_fit.forecasters["sloppy"]["log_sigma"]
    assert sharp < sloppy - 1.0  # truth: log(0.3) vs log(2.5), a gap of 2.1
    assert map_fit.n_forecasters == len(FORECASTERS)
    assert map_fit.n_questions == 250
    assert map_fit.duration_seconds > 0


def test_the_better_forecaster_weighs_more(map_fit):
    t = [10 * DAY, 10 * DAY]
    sharp_yes, _, _ = map_fit.aggregate(["sharp", "sloppy"], [0.9, 0.1], t, life_seconds=20 * DAY)
    sloppy_yes, _, _ = map_fit.aggregate(["sharp", "sloppy"], [0.1, 0.9], t, life_seconds=20 * DAY)
    assert sharp_yes > 0.7
    assert sloppy_yes < 0.3


def test_newcomer_gets_the_population_prior(map_fit):
    pop = map_fit.population
    assert map_fit.forecaster_parameters("never-seen") == {
        "log_alpha": 0.0,
        "bias": pop["mu_b"],
        "log_sigma": pop["mu_s"],
        # a newcomer's uncertainty is the population's spread
        "log_alpha_sd": pop["tau_a"],
        "bias_sd": pop["tau_b"],
        "log_sigma_sd": pop["tau_s"],
    }
    population_only = bayes.BayesFit(population=pop, forecasters={})
    args = ([0.8], [3 * DAY])
    newcomer = map_fit.aggregate(["never-seen"], *args, life_seconds=30 * DAY)
    assert newcomer == pytest.approx(population_only.aggregate(["someone-else"], *args, life_seconds=30 * DAY))
    assert newcomer != pytest.approx(map_fit.aggregate(["sharp"], *args, life_seconds=30 * DAY))


def test_latest_forecasts_count_more_than_old_ones(map_fit):
    keys = ["crowd0", "crowd1"]
    early_yes = map_fit.aggregate(keys, [0.9, 0.2], [90 * DAY, 1 * DAY], life_seconds=100 * DAY)[0]
    late_yes = map_fit.aggregate(keys, [0.2, 0.9], [90 * DAY, 1 * DAY], life_seconds=100 * DAY)[0]
    assert late_yes > 0.5 > early_yes


def test_a_late_forecast_counts_as_an_informed_one(map_fit):
    """The loading (model version 5): near resolution a forecast is an informed forecaster's
    probability, so it says more about the latent than the same forecast at the question's opening,
    where the loading is 1 and eta does not matter. With eta very large there is no loading."""
    informed = bayes.BayesFit(population=dict(map_fit.population, eta=0.5), forecasters={})
    bare = bayes.BayesFit(population=dict(map_fit.population, eta=1e12), forecasters={})
    life = 100 * DAY
    late = (["reader"], [0.15], [3600.0])
    assert informed.aggregate(*late, life_seconds=life)[0] < bare.aggregate(*late, life_seconds=life)[0] < 0.15
    opening = (["reader"], [0.15], [life])
    assert informed.aggregate(*opening, life_seconds=life)[0] == pytest.approx(
        bare.aggregate(*opening, life_seconds=life)[0]
    )
    # two forecasts an hour before resolution: the newer one moves the aggregate further with the loading
    keys, t = ["a", "b"], [2 * 3600.0, 3600.0]
    shift = {
        name: fit.aggregate(keys, [0.8, 0.3], t, life_seconds=life)[0]
        - fit.aggregate(keys, [0.8, 0.8], t, life_seconds=life)[0]
        for name, fit in (("informed", informed), ("bare", bare))
    }
    assert shift["informed"] < shift["bare"] < 0
    assert bayes.loading(0.5, 1.0) == 1.0
    assert bayes.loading(0.5, 0.0) == pytest.approx(math.sqrt(3.0))


@pytest.mark.parametrize(
    "probabilities",
    [[0.5], [0.7, 0.8, 0.75], [0.05, 0.1, 0.02, 0.2], [0.0, 1.0, 0.5], [0.99, 0.97, 0.995]],
)
def test_aggregate_is_a_probability_inside_its_interval(map_fit, probabilities):
    n = len(probabilities)
    keys = [*list(FORECASTERS)[:n]]
    t = np.linspace(60, 20, n) * DAY
    mean, low, high = map_fit.aggregate(keys, probabilities, t, life_seconds=90 * DAY)
    assert 0 < low <= mean <= high < 1
    # Only an aggregate at the display bounds (0.1% / 99.9%) may have an interval of zero width.
    assert low < high or low == high == mean in bayes.OUTPUT_CLIP
    # The same forecasts give the same interval (fixed draws: a stored aggregate can be reproduced).
    assert map_fit.aggregate(keys, probabilities, t, life_seconds=90 * DAY) == (mean, low, high)


def test_interval_is_narrower_for_forecasters_with_a_record_than_for_newcomers(map_fit):
    """The interval is the aggregate's uncertainty from what the model knows about the forecasters:
    the crowd's 250-question record pins their parameters down; newcomers have only the prior."""
    t, life = np.array([20.0, 15.0, 10.0]) * DAY, 30 * DAY
    p = [0.7, 0.75, 0.8]
    known = map_fit.aggregate(["crowd0", "crowd1", "crowd2"], p, t, life_seconds=life)
    unknown = map_fit.aggregate(["new0", "new1", "new2"], p, t, life_seconds=life)
    assert known[1] < known[0] < known[2] and unknown[1] < unknown[0] < unknown[2]
    assert known[2] - known[1] < unknown[2] - unknown[1]
    for key in ("crowd0", "sharp"):
        record = map_fit.forecaster_parameters(key)
        assert 0 < record["bias_sd"] < map_fit.population["tau_b"]


def test_aggregate_handles_many_forecasts_and_no_forecast(map_fit):
    rng = np.random.default_rng(1)
    n = 10_000
    keys = [f"reader{i}" for i in range(n)]
    mean, low, high = map_fit.aggregate(keys, rng.uniform(0.6, 0.9, n), rng.uniform(0, 50 * DAY, n))
    assert 0.5 < mean < 1 and low <= mean <= high
    mean, low, high = map_fit.aggregate([], [], [])
    assert 0 < low <= mean <= high < 1


def test_prefix_scan_filter_matches_the_sequential_kalman_filter(map_fit):
    rng = np.random.default_rng(7)
    pop = dict(
        map_fit.population,
        gamma_bias=rng.normal(0, 0.2, bayes.N_COV).tolist(),
        gamma_noise=rng.normal(0, 0.1, bayes.N_COV).tolist(),
        q_event=0.2,
    )
    n = 37
    par = rng.normal(0, 0.3, (n, 3))
    x = rng.normal(0, 2, n)
    f = np.sort(rng.uniform(0, 1, n))[::-1]
    z = covariates(rng.uniform(size=n) < 0.2, np.arange(n), rng.integers(0, 3, n), f, f * 1e7)
    out = _filter(pop, par, x, f, z)
    r = pop["q"] * f ** pop["kappa"]
    alpha = np.exp(par[:, 0]) * np.sqrt((1 + pop["eta"]) / (f ** pop["kappa"] + pop["eta"]))
    beta = par[:, 1] + z @ np.array(pop["gamma_bias"])
    e = np.exp(2 * (par[:, 2] + z @ np.array(pop["gamma_noise"])))
    m, v, loglik = pop["m0"], pop["s0"] ** 2, 0.0
    for k in range(n):
        if k:
            v += r[k - 1] - r[k] + pop["q_event"]
        s = alpha[k] ** 2 * v + e[k]
        innovation = x[k] - alpha[k] * m - beta[k]
        loglik += -0.5 * (math.log(2 * math.pi * s) + innovation**2 / s)
        gain = v * alpha[k] / s
        m, v = m + gain * innovation, v - gain * alpha[k] * v
    assert (out["m"][0], out["v"][0], out["r"][0], out["loglik"][0]) == pytest.approx((m, v, r[-1], loglik))


def test_fit_round_trips_through_json(map_fit):
    text = json.dumps(map_fit.to_dict())
    again = bayes.BayesFit.from_dict(json.loads(text))
    assert again.population == map_fit.population
    assert again.forecasters == map_fit.forecasters
    assert (again.method, again.n_questions, again.diagnostics) == (
        map_fit.method,
        map_fit.n_questions,
        map_fit.diagnostics,
    )
    args = (["sharp", "crowd3", "nobody"], [0.7, 0.6, 0.4], [9 * DAY, 5 * DAY, 1 * DAY])
    assert again.aggregate(*args) == map_fit.aggregate(*args)


def test_integer_forecaster_keys_round_trip():
    data = simulate(np.random.default_rng(3), 30, per_question=(3, 4))
    data = bayes.ForecastData(
        question_index=data.question_index,
        forecaster_key=[list(FORECASTERS).index(k) for k in data.forecaster_key],
        probability=data.probability,
        seconds_to_resolution=data.seconds_to_resolution,
        outcome=data.outcome,
    )
    result = bayes.fit(data)
    again = bayes.BayesFit.from_dict(json.loads(json.dumps(result.to_dict())))
    assert set(again.forecasters) == set(result.forecasters) <= set(range(len(FORECASTERS)))


def test_standing_keeps_each_forecasters_latest_forecast():
    data = bayes.ForecastData(
        question_index=[0, 0, 0, 0, 1],
        forecaster_key=["a", "b", "a", "c", "b"],
        probability=[0.1, 0.2, 0.3, 0.4, 0.5],
        seconds_to_resolution=[40.0, 30.0, 20.0, 10.0, 5.0],
        outcome=[1, 0],
    )
    standing = data.standing()
    assert list(standing.forecaster_key) == ["b", "a", "c", "b"]
    assert list(standing.probability) == [0.2, 0.3, 0.4, 0.5]
    assert list(standing.revisions) == [0, 1, 0, 0]
    assert list(standing.opener) == [False, True, False, True]
    assert list(standing.life_seconds) == [40.0, 5.0]


def test_warm_started_fit_matches_a_cold_one(data, map_fit):
    warm = bayes.fit(data, previous=map_fit)
    assert warm.diagnostics["iterations"] < map_fit.diagnostics["iterations"]
    args = (["sharp", "sloppy", "crowd1"], [0.8, 0.3, 0.6], [20 * DAY, 10 * DAY, 2 * DAY])
    assert warm.aggregate(*args)[0] == pytest.approx(map_fit.aggregate(*args)[0], abs=0.02)


def test_small_nuts_fit_reports_diagnostics():
    data = simulate(np.random.default_rng(11), 12, forecasters=dict(list(FORECASTERS.items())[:5]), per_question=(3, 4))
    result = bayes.fit(data, method="nuts", draws=30, tune=30, chains=2, random_seed=1)
    assert result.method == "nuts"
    for key in ("max_rhat", "min_ess", "divergences"):
        assert key in result.diagnostics
    assert math.isfinite(result.diagnostics["max_rhat"]) and result.diagnostics["min_ess"] > 0
    # a count of the 2 chains' 30 kept transitions each
    divergences = result.diagnostics["divergences"]
    assert isinstance(divergences, int) and 0 <= divergences <= 2 * 30
    assert set(result.forecasters) <= set(FORECASTERS)
    mean, low, high = result.aggregate(["sharp", "nobody"], [0.8, 0.6], [5 * DAY, 2 * DAY])
    assert 0 < low <= mean <= high < 1
    json.dumps(result.to_dict())


def test_evaluation_runs_bayes_through_its_hook():
    data = simulate(np.random.default_rng(5), 40, per_question=(5, 6))
    epoch = pd.Timestamp("2020-01-01", tz="UTC")
    resolved = [epoch + pd.Timedelta(days=float(3 * i + 200)) for i in range(data.n_questions)]
    frame = pd.DataFrame(
        {
            "question_id": [f"q{i}" for i in data.question_index],
            "forecaster_id": list(data.forecaster_key),
            "made_at": [
                resolved[i] - pd.Timedelta(seconds=float(t))
                for i, t in zip(data.question_index, data.seconds_to_resolution, strict=True)
            ],
            "probability": data.probability,
            "outcome": [int(data.outcome[i]) for i in data.question_index],
            "resolved_at": [resolved[i] for i in data.question_index],
        }
    )
    assert evaluation.resolve_methods(["median", "bayes"]) == ["median", "bayes"]
    assert evaluation.resolve_methods(None)[-1] == "bayes"  # every method by default
    result = evaluation.evaluate(
        frame, methods=["bayes", "logodds_mean"], refit_every_days=15, time_averaged=True, keep_predictions=True
    )
    scores = result["methods"]["bayes"]
    assert result["questions"] == 40
    # the scores are those of the final P(YES) of each question (evaluation's documented formulas, written out)
    p_yes = np.array([row["p_yes"]["bayes"] for row in result["predictions"]])
    outcome = np.array([row["outcome"] for row in result["predictions"]], dtype=float)
    assert scores["brier"] == pytest.approx(np.mean((p_yes - outcome) ** 2), rel=1e-12)
    p_outcome = np.clip(np.where(outcome == 1, p_yes, 1 - p_yes), 0.001, 0.999)
    assert scores["log"] == pytest.approx(np.mean(np.log(p_outcome)), rel=1e-12)
    assert len(set(p_yes.round(6))) > 20  # an aggregate per question, not one constant
    assert 0 <= scores["brier_time_averaged"] <= 1 and scores["log_time_averaged"] <= 0


def test_covariate_dot_is_the_matrix_product():
    import pytensor.tensor as pt

    from forecasting.bayes.graph import covariate_dot
    from forecasting.bayes.model import N_COV

    rng = np.random.default_rng(3)
    z, coef = rng.normal(size=(50, N_COV)), rng.normal(size=N_COV)
    assert np.allclose(covariate_dot(pt.as_tensor(z), pt.as_tensor(coef)).eval(), z @ coef)


def test_fits_run_on_one_blas_thread_and_restore_the_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from forecasting.bayes.map_fit import single_threaded_blas

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    with single_threaded_blas():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
