"""The stack shown to readers (forecasting/bayes/stacking.py): the log-odds mean until the model's
out-of-sample record earns it trust, then as far as that record supports."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from forecasting.bayes import StackWeights, fit_stack


def _logit(p):
    return math.log(p / (1 - p))


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def synthetic_record(n, *, informative=True, seed=0):
    """Out-of-sample (p_model, p_pool) with outcomes: the model sees the truth's log-odds, the pool a
    blurred, shrunk view; or (not informative) the model is the pool plus noise."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 2, n)
    outcomes = (rng.random(n) < 1 / (1 + np.exp(-truth))).astype(float)
    pool_logit = 0.5 * truth + rng.normal(0, 1.0, n)
    model_logit = truth if informative else pool_logit + rng.normal(0, 1.5, n)
    p = 1 / (1 + np.exp(-np.column_stack([model_logit, pool_logit])))
    return p, outcomes


def test_with_no_record_the_stack_is_the_logodds_mean():
    weights = fit_stack(np.zeros((0, 2)), np.zeros(0))
    assert weights.weights == (0.0, 1.0, 0.0) and weights.n_questions == 0
    assert StackWeights().combine([0.9, 0.3]) == pytest.approx(0.3)
    assert weights.combine([0.05, 0.8]) == pytest.approx(0.8)


def test_combine_by_hand():
    weights = StackWeights(weights=(0.5, 1.2, 0.3))
    x_model, x_pool, x_market = _logit(0.8), _logit(0.6), _logit(0.7)
    assert weights.combine([0.8, 0.6]) == pytest.approx(_sigmoid(0.5 * (x_model - x_pool) + 1.2 * x_pool))
    assert weights.combine([0.8, 0.6, None]) == weights.combine([0.8, 0.6])  # no market
    expected = _sigmoid(0.5 * (x_model - x_pool) + 1.2 * x_pool + 0.3 * (x_market - x_pool))
    assert weights.combine([0.8, 0.6, 0.7]) == pytest.approx(expected)
    # the output is kept within [0.1%, 99.9%]
    assert StackWeights(weights=(0.0, 50.0, 0.0)).combine([0.9, 0.9]) == pytest.approx(0.999)


def test_an_informative_model_earns_trust_as_its_record_grows():
    small = fit_stack(*synthetic_record(10))
    large = fit_stack(*synthetic_record(2000))
    assert 0 < small.weights[0] < large.weights[0]
    assert large.weights[0] > 0.6  # the model sees the truth: most of the way to it
    assert large.n_questions == 2000
    # the uncertainty about the trust shrinks with the record
    assert large.covariance[0][0] < small.covariance[0][0] < 0.3**2


def test_a_model_that_only_adds_noise_earns_none():
    weights = fit_stack(*synthetic_record(2000, informative=False))
    assert abs(weights.weights[0]) < 0.05


def test_the_fit_is_the_posterior_mode():
    p, y = synthetic_record(300, seed=5)
    x = np.log(p / (1 - p))
    design = np.column_stack([x[:, 0] - x[:, 1], x[:, 1]])

    def negative_log_posterior(w):
        z = design @ w
        likelihood = np.sum(y * z - np.log1p(np.exp(z)))
        return -likelihood + 0.5 * (w[0] / 0.3) ** 2 + 0.5 * ((w[1] - 1) / 0.05) ** 2  # no market: w[2] = 0

    reference = minimize(
        negative_log_posterior, [0.0, 1.0], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12}
    )
    fitted = fit_stack(p, y)
    np.testing.assert_allclose(fitted.weights, [*reference.x, 0.0], atol=1e-5)
    assert fitted.n_market == 0


def test_round_trip_and_missing_weights():
    weights = fit_stack(*synthetic_record(50))
    assert StackWeights.from_dict(weights.as_dict()) == weights
    assert StackWeights.from_dict(None) == StackWeights() == StackWeights.from_dict({"n_questions": 3})


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="3 rows of probabilities but 2 outcomes"):
        fit_stack(np.full((3, 2), 0.5), np.zeros(2))
    with pytest.raises(ValueError, match="positive"):
        fit_stack(np.full((3, 2), 0.5), np.zeros(3), trust_sd=0)


def test_interval_holds_the_value_and_narrows_with_the_record():
    model = (0.8, 0.7, 0.88)
    prior = StackWeights()
    learnt = fit_stack(*synthetic_record(2000))
    for weights in (prior, learnt):
        low, high = weights.interval(model, 0.6)
        assert low < weights.combine([0.8, 0.6]) < high
        assert weights.interval(model, 0.6) == (low, high)  # fixed draws: the same every time
    prior_low, prior_high = prior.interval(model, 0.6)
    # with no record the value is the pool's, and the interval spans the trust the prior allows
    assert prior_low < 0.6 < prior_high
    assert prior_high - prior_low > 0.05


def market_record(n, *, informative=True, seed=0):
    """(p_model, p_pool, p_market) with outcomes: half the questions have a market; the market sees the
    truth (or only noise), the model and the pool a blurred view."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 2, n)
    outcomes = (rng.random(n) < 1 / (1 + np.exp(-truth))).astype(float)
    pool = 0.5 * truth + rng.normal(0, 1.0, n)
    model = pool + rng.normal(0, 0.2, n)
    market = truth + rng.normal(0, 0.3, n) if informative else pool + rng.normal(0, 1.5, n)
    p = 1 / (1 + np.exp(-np.column_stack([model, pool, market])))
    p[::2, 2] = np.nan  # no market on these questions
    return p, outcomes


def test_an_informative_market_earns_its_own_weight():
    weights = fit_stack(*market_record(2000))
    assert weights.n_market == 1000 and weights.weights[2] > 0.5
    # on a question with a market the stack moves towards its price; without one, the market plays no part
    assert weights.combine([0.6, 0.6, 0.9]) > weights.combine([0.6, 0.6]) + 0.1
    noisy = fit_stack(*market_record(2000, informative=False))
    assert abs(noisy.weights[2]) < 0.05


def test_the_market_weight_is_the_posterior_mode():
    p, y = market_record(400, seed=2)
    x = np.log(p / (1 - p))
    has = ~np.isnan(x[:, 2])
    design = np.column_stack([x[:, 0] - x[:, 1], x[:, 1], np.where(has, x[:, 2] - x[:, 1], 0.0)])

    def negative_log_posterior(w):
        z = design @ w
        prior = (w[0] / 0.3) ** 2 + ((w[1] - 1) / 0.05) ** 2 + (w[2] / 0.3) ** 2
        return -np.sum(y * z - np.log1p(np.exp(z))) + 0.5 * prior

    reference = minimize(
        negative_log_posterior,
        [0.0, 1.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000},
    )
    np.testing.assert_allclose(fit_stack(p, y).weights, reference.x, atol=1e-4)


def test_a_two_weight_stack_reads_as_one_without_market_trust():
    old = StackWeights.from_dict({"weights": [0.4, 1.1], "covariance": [[0.01, 0.0], [0.0, 0.002]], "n_questions": 9})
    assert old.weights == (0.4, 1.1, 0.0) and old.n_questions == 9
    assert old.covariance[2][2] == pytest.approx(0.3**2) and old.covariance[0][2] == 0.0
    assert old.combine([0.7, 0.6, 0.95]) == old.combine([0.7, 0.6])
