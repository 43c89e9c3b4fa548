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


# --- the interval, the stored form, and the fit's edges, against independent formulas -------------------------

Z90 = 1.6448536269514722  # the standard normal's 95th percentile
Z75 = 0.6744897501960817  # its 75th
CERTAIN = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))  # no uncertainty about the weights


@pytest.mark.parametrize(("half_width", "level", "z"), [(0.4, 0.90, Z90), (1.5, 0.90, Z90), (1.5, 0.50, Z75)])
def test_with_certain_weights_and_full_trust_the_interval_is_the_models_own(half_width, level, z):
    # trust 1, scale 1: the stack is the model, so its interval is the model's 90% interval (a normal on the logit
    # scale with sd = width / (2 z90)) read at the asked level, up to the sampling error of the fixed 512 draws
    # (a tenth of that sd; the error of a 5% quantile of 512 normal draws is about 0.09 sd).
    p = 0.6
    model = (p, _sigmoid(_logit(p) - half_width), _sigmoid(_logit(p) + half_width))
    sd = 2 * half_width / (2 * Z90)
    low, high = StackWeights(weights=(1.0, 1.0, 0.0), covariance=CERTAIN).interval(model, 0.3, level=level)
    assert _logit(low) == pytest.approx(_logit(p) - z * sd, abs=0.1 * sd)
    assert _logit(high) == pytest.approx(_logit(p) + z * sd, abs=0.1 * sd)


def test_the_interval_follows_the_market_and_the_pool_exactly_when_the_weights_say_so():
    model = (0.8, 0.7, 0.88)
    # trust 0, scale 1, market 1: logit P = logit(pool) + (logit(market) - logit(pool)) = logit(market)
    stack = StackWeights(weights=(0.0, 1.0, 1.0), covariance=CERTAIN)
    assert stack.interval(model, 0.3, 0.65) == pytest.approx((0.65, 0.65), abs=1e-12)
    assert stack.interval(model, 0.3) == pytest.approx((0.3, 0.3), abs=1e-12)  # no market: the pool
    # scale 5 (extremizing) on a 90% pool: 0.99998..., shown as at most 99.9%
    assert StackWeights(weights=(0.0, 5.0, 0.0), covariance=CERTAIN).interval(model, 0.9) == (0.999, 0.999)
    assert StackWeights(weights=(0.0, 5.0, 0.0), covariance=CERTAIN).interval(model, 0.1) == (0.001, 0.001)


def test_the_interval_spreads_with_the_uncertainty_of_the_trust():
    # a model certain of 80%, the pool at 50% (logit 0): P = expit(trust * logit 0.8) with trust ~ N(0.5, 0.2^2)
    stack = StackWeights(weights=(0.5, 1.0, 0.0), covariance=((0.04, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))
    low, high = stack.interval((0.8, 0.8, 0.8), 0.5)
    x = _logit(0.8)
    assert _logit(low) == pytest.approx(x * (0.5 - Z90 * 0.2), abs=0.1 * 0.2 * x)
    assert _logit(high) == pytest.approx(x * (0.5 + Z90 * 0.2), abs=0.1 * 0.2 * x)


def test_certain_inputs_are_read_as_a_tenth_of_a_percent_from_certainty():
    # 0 and 1 are read as 0.001 and 0.999: with the pool at "1" and the market at "0" the market term
    # logit(0.001) - logit(0.999) exactly undoes the pool's logit(0.999) at market weight 1/2
    stack = StackWeights(weights=(0.5, 1.0, 0.5), covariance=CERTAIN)
    assert stack.combine([1.0, 1.0, 0.0]) == pytest.approx(0.5, abs=1e-12)
    assert stack.interval((1.0, 1.0, 1.0), 1.0, 0.0) == pytest.approx((0.5, 0.5), abs=1e-12)
    assert StackWeights(weights=(0.5, 1.0, 0.0)).combine([1.0, 0.5]) == pytest.approx(_sigmoid(0.5 * _logit(0.999)))


def test_stored_weights_keep_their_counts_and_default_to_none():
    weights = StackWeights(weights=(0.3, 1.1, 0.4), n_questions=40, n_market=12)
    stored = weights.as_dict()
    assert stored["n_questions"] == 40 and stored["n_market"] == 12
    assert StackWeights.from_dict(stored) == weights
    bare = StackWeights.from_dict({"weights": [0.3, 1.1, 0.4]})
    assert (bare.n_questions, bare.n_market) == (0, 0)
    np.testing.assert_allclose(bare.covariance, np.diag([0.09, 0.0025, 0.09]), rtol=1e-12)  # prior sds .3, .05, .3


def test_an_older_two_weight_stack_gains_an_independent_market_weight():
    old = StackWeights.from_dict({"weights": [0.4, 1.1], "covariance": [[0.01, 0.003], [0.003, 0.002]]})
    assert old.covariance == ((0.01, 0.003, 0.0), (0.003, 0.002, 0.0), (0.0, 0.0, 0.09))


def test_a_flat_or_empty_input_is_rows_of_model_and_pool():
    rows = fit_stack([[0.7, 0.6], [0.2, 0.3], [0.9, 0.8]], [1, 0, 1])
    assert fit_stack([0.7, 0.6, 0.2, 0.3, 0.9, 0.8], [1, 0, 1]) == rows
    empty = fit_stack([], [])
    assert empty == StackWeights() and (empty.n_questions, empty.n_market) == (0, 0)


def test_the_refusals_name_the_problem():
    with pytest.raises(ValueError, match=r"^4 rows of probabilities but 2 outcomes$"):
        fit_stack(np.full((4, 2), 0.5), np.zeros(2))
    for sds in ({"trust_sd": 0.0}, {"scale_sd": 0.0}, {"market_sd": -1.0}):
        with pytest.raises(ValueError, match=r"^the prior sds must be positive$"):
            fit_stack(np.full((3, 2), 0.5), np.zeros(3), **sds)


def negative_log_posterior(w, p, y, sds=(0.3, 0.05, 0.3)):
    """The objective written from the module docstring: logistic likelihood, normal priors around (0, 1, 0)."""
    x = np.log(p / (1 - p))
    has = ~np.isnan(x[:, 2])
    design = np.column_stack([x[:, 0] - x[:, 1], x[:, 1], np.where(has, x[:, 2] - x[:, 1], 0.0)])
    z = design @ w
    prior = sum(((wi - mi) / sd) ** 2 for wi, mi, sd in zip(w, (0.0, 1.0, 0.0), sds, strict=True))
    return -np.sum(y * z - np.log1p(np.exp(z))) + 0.5 * prior


def test_the_covariance_is_the_inverse_curvature_at_the_mode():
    # Laplace: the inverse of the negative log posterior's Hessian at the mode, here by central differences
    p, y = market_record(400, seed=3)
    fitted = fit_stack(p, y)
    mode, h = np.array(fitted.weights), 1e-4
    hessian = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            e_i, e_j = np.eye(3)[i] * h, np.eye(3)[j] * h
            hessian[i, j] = (
                negative_log_posterior(mode + e_i + e_j, p, y)
                - negative_log_posterior(mode + e_i - e_j, p, y)
                - negative_log_posterior(mode - e_i + e_j, p, y)
                + negative_log_posterior(mode - e_i - e_j, p, y)
            ) / (4 * h * h)
    np.testing.assert_allclose(np.array(fitted.covariance), np.linalg.inv(hessian), rtol=1e-4, atol=1e-9)


def test_the_fit_finds_the_mode_from_far_away():
    # Wide priors and a model that is right far more often than the pool: the mode is far from the prior mean,
    # where a full Newton step overshoots; the fit still lands on it.
    p, y = synthetic_record(300, seed=11)
    sds = (20.0, 20.0, 20.0)
    fitted = fit_stack(p, y, trust_sd=sds[0], scale_sd=sds[1], market_sd=sds[2])
    full = np.column_stack([p, np.full(len(p), np.nan)])
    reference = minimize(
        negative_log_posterior,
        [0.0, 1.0, 0.0],
        args=(full, y, sds),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000},
    )
    np.testing.assert_allclose(fitted.weights, reference.x, atol=1e-4)
    assert fitted.weights[0] > 0.6
