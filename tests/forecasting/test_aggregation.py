import math
import statistics
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting import aggregation

probability_lists = st.lists(st.floats(min_value=0.01, max_value=0.99), min_size=1, max_size=40)


def yes(vector) -> float:
    return float(vector[1])


def test_mean_and_median_hand_computed():
    assert yes(aggregation.mean([0.2, 0.6, 0.9])) == pytest.approx(1.7 / 3)
    assert yes(aggregation.median([0.2, 0.9, 0.4])) == pytest.approx(0.4)
    assert yes(aggregation.median([0.2, 0.4])) == pytest.approx(0.3)


def test_multiple_choice_median_is_renormalised():
    result = aggregation.median([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.4, 0.5, 0.1]])
    # per-option medians 0.4, 0.3, 0.1 -> divided by 0.8
    np.testing.assert_allclose(result, [0.5, 0.375, 0.125])


def test_recency_weights_follow_metaculus():
    np.testing.assert_allclose(aggregation.recency_weights(2), [1, 1])
    w = aggregation.recency_weights(4)
    np.testing.assert_allclose(w, np.exp(np.sqrt([1, 2, 3, 4]) - 2))
    assert w[-1] == pytest.approx(1.0)


def test_recency_weights_start_at_three_forecasters():
    # n = 3: e^(1 - √3), e^(√2 - √3), 1 (one or two forecasters weigh the same)
    np.testing.assert_allclose(aggregation.recency_weights(3), [0.4809217, 0.7277212, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(aggregation.recency_weights(1), [1.0])
    assert aggregation.recency_weights(0).shape == (0,)


def test_recency_weighted_median_hand_computed():
    # n = 4: weights e^(1-2), e^(sqrt2-2), e^(sqrt3-2), 1 = .368, .556, .755, 1 (total 2.679).
    # Sorted by value: 0.1 (w .368), 0.3 (w 1, newest), 0.7 (w .556), 0.9 (w .755):
    # cumulative .137, .511 -> the median is 0.3, where the plain median would be 0.5.
    forecasts = [0.1, 0.7, 0.9, 0.3]  # oldest first
    assert yes(aggregation.recency_weighted_median(forecasts)) == pytest.approx(0.3)
    assert yes(aggregation.median(forecasts)) == pytest.approx(0.5)


def test_recency_weighted_median_is_the_plain_median_for_two():
    assert yes(aggregation.recency_weighted_median([0.2, 0.6])) == pytest.approx(0.4)


def test_weighted_median_lands_between_values_on_exact_half():
    assert aggregation.weighted_median([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1]) == pytest.approx(2.5)
    assert aggregation.weighted_median([1.0, 2.0, 3.0], [1, 1, 5]) == pytest.approx(3.0)


def test_weighted_median_and_squeeze_read_decimals_as_numbers():
    weights = [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")]
    assert aggregation.weighted_median([Decimal("0.3"), Decimal("0.1"), Decimal("0.2")], weights) == 0.25
    np.testing.assert_allclose(aggregation.squeeze_multiple_choice([Decimal("0.6"), Decimal("0")]), [0.999, 0.001])


def test_multiple_choice_recency_weighted_median_is_squeezed_as_on_metaculus():
    # n = 3, oldest first: weights e^(1-√3), e^(√2-√3), 1 = .481, .728, 1 (half of the total: 1.105).
    forecasts = [[0.6, 0.39, 0.01], [0.2, 0.2, 0.6], [0.4, 0.59, 0.01]]
    # Per option, sorted with cumulative weight:
    #   option 0: 0.2 (.728), 0.4 (1.728)  -> 0.4
    #   option 1: 0.2 (.728), 0.39 (1.209) -> 0.39
    #   option 2: 0.01 (.481), 0.01 (1.481) -> 0.01
    medians = np.array([0.4, 0.39, 0.01])
    # Metaculus (utils/the_math/aggregations.py, MedianAggregatorMixin): subtract the smallest
    # forecastable value 0.001, renormalise, squeeze into [0.001, 1 - 0.001 (k - 1)].
    shifted = medians - 0.001
    expected = shifted / shifted.sum() * (1 - 3 * 0.001) + 0.001
    result = aggregation.recency_weighted_median(forecasts)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)
    assert result.sum() == pytest.approx(1.0)
    # dividing by the sum instead would give 0.01 / 0.8 = 0.0125 to option 2
    assert result[2] < 0.0123


def test_multiple_choice_recency_weighted_median_keeps_the_floor_option_at_the_floor():
    # Option 2's median is Metaculus's smallest forecastable value: the aggregate keeps it there
    # (medians 0.5, 0.3, 0.001 sum to 0.801: dividing by the sum would give it 0.00125).
    forecasts = [[0.699, 0.3, 0.001], [0.2, 0.2, 0.6], [0.5, 0.499, 0.001]]
    assert aggregation.recency_weighted_median(forecasts)[2] == pytest.approx(0.001, abs=1e-15)


def test_logodds_mean_hand_computed():
    # logit(0.2) = -ln 4, logit(0.8) = ln 4, logit(0.9) = ln 9 -> mean ln(9)/3 -> p = 9^(1/3) / (1 + 9^(1/3))
    expected = 9 ** (1 / 3) / (1 + 9 ** (1 / 3))
    assert yes(aggregation.logodds_mean([0.2, 0.8, 0.9])) == pytest.approx(expected)


def test_logodds_mean_clips_certainties():
    assert yes(aggregation.logodds_mean([1.0, 1.0])) == pytest.approx(0.99)


@pytest.mark.parametrize(
    "bad",
    [
        [[0.5], [0.5]],  # one outcome per forecaster
        [[[0.5, 0.5]]],  # three dimensions
        0.5,  # a lone number
    ],
)
def test_a_matrix_that_is_not_forecasters_by_outcomes_is_refused(bad):
    for name in ("mean", "median", "logodds_mean"):
        with pytest.raises(ValueError, match=r"^probabilities must be an \(n forecasters, k outcomes\) array$"):
            aggregation.AGGREGATORS[name](bad)


def test_decimal_probabilities_aggregate_as_their_values():
    # a DecimalField gives Decimals: read as numbers (P(NO) is 1 - P(YES) for them too)
    forecasts = [Decimal("0.2"), Decimal("0.6"), Decimal("0.7")]
    np.testing.assert_allclose(aggregation.mean(forecasts), [0.5, 0.5])
    np.testing.assert_allclose(aggregation.median(forecasts), [0.4, 0.6])


def test_extremizing_pushes_away_from_half():
    # mean log-odds ln 4 (p = 0.8) times 2 -> odds 16 -> 16/17
    assert yes(aggregation.extremized_logodds([0.8, 0.8], factor=2.0)) == pytest.approx(16 / 17)
    assert yes(aggregation.extremized_logodds([0.8, 0.8], factor=1.0)) == pytest.approx(0.8)


def test_extremizing_a_uniform_forecast_keeps_it_uniform_at_any_factor():
    # the softmax is taken around its largest term: no underflow to 0/0 however large the factor
    for factor in (0.5, 4.0, 1000.0):
        np.testing.assert_allclose(aggregation.extremized_logodds([[0.25] * 4] * 3, factor=factor), [0.25] * 4)
    np.testing.assert_allclose(aggregation.extremized_logodds([[0.1, 0.9]], factor=1000.0), [0.0, 1.0], atol=1e-300)


def test_fit_extremizing_factor_hand_computed():
    # Forecasters say 70% on ten questions, nine of which resolve YES. The log loss of
    # softmax(d ln[0.3, 0.7]) is least where the extremized forecast 0.7^d / (0.7^d + 0.3^d) equals
    # the observed 90%: d = logit(0.9) / logit(0.7) = ln 9 / ln(7/3) = 2.593214...
    stats = [aggregation.mean_log_probabilities([[0.3, 0.7]] * 3) for _ in range(10)]
    outcomes = [1] * 9 + [0]
    expected = math.log(9) / math.log(7 / 3)
    assert expected == pytest.approx(2.593214, abs=1e-6)
    assert aggregation.fit_extremizing_factor(stats, outcomes) == pytest.approx(expected, abs=1e-4)
    # outcome indexes read as integers, whatever their type
    assert aggregation.fit_extremizing_factor(stats, [1.0] * 9 + [0.0]) == pytest.approx(expected, abs=1e-4)
    # an overconfident crowd (70% on questions that resolve YES 65% of the time) is tempered: d < 1
    tempered = math.log(13 / 7) / math.log(7 / 3)  # 0.7306
    assert aggregation.fit_extremizing_factor(stats * 2, [1] * 13 + [0] * 7) == pytest.approx(tempered, abs=1e-4)


def test_fit_extremizing_factor_minimises_the_log_loss_over_mixed_questions():
    # Binary and three-option questions together: the factor is the minimiser of the summed log loss,
    # found here by a fine grid over the bounds with the loss written out directly.
    binary = [[0.3, 0.7]] * 3 + [[0.2, 0.8]] * 3
    three = [[0.2, 0.3, 0.5]] * 2 + [[0.6, 0.3, 0.1]] * 2
    stats = [aggregation.mean_log_probabilities([row]) for row in binary + three]
    outcomes = [1, 1, 0, 1, 1, 1, 2, 1, 0, 2]  # six binary, then four three-option questions

    def log_loss(d: float) -> float:
        total = 0.0
        for row, outcome in zip(binary + three, outcomes, strict=True):
            weights = [q**d for q in row]
            total -= math.log(weights[outcome] / sum(weights))
        return total

    grid = np.linspace(0.5, 4.0, 35_001)  # steps of 1e-4
    reference = grid[int(np.argmin([log_loss(d) for d in grid]))]
    assert 0.6 < reference < 3.9  # an interior minimum, not a bound
    assert aggregation.fit_extremizing_factor(stats, outcomes) == pytest.approx(reference, abs=2e-4)


def test_fit_extremizing_factor_stops_at_its_bounds_and_defaults_to_none():
    # every question resolved as the crowd leaned: the loss keeps falling, the fit stops at the top bound 4
    stats = [aggregation.mean_log_probabilities([[0.3, 0.7]]) for _ in range(20)]
    assert aggregation.fit_extremizing_factor(stats, [1] * 20) == pytest.approx(4.0, abs=1e-3)
    # every question resolved against it: the bottom bound 0.5
    assert aggregation.fit_extremizing_factor(stats, [0] * 20) == pytest.approx(0.5, abs=1e-3)
    assert aggregation.fit_extremizing_factor([], []) == 1.0  # nothing resolved yet: no extremizing


def test_registry_names():
    assert set(aggregation.AGGREGATORS) >= {
        "mean",
        "median",
        "recency_weighted_median",
        "logodds_mean",
        "extremized_logodds",
    }
    assert aggregation.AGGREGATORS["extremized_logodds"].parameters == ("factor",)


def test_registry_entries_pass_only_their_own_parameters():
    assert yes(aggregation.AGGREGATORS["extremized_logodds"]([0.8, 0.8], factor=2.0)) == pytest.approx(16 / 17)
    # a method that learns nothing ignores the factor the caller passes to every method
    assert yes(aggregation.AGGREGATORS["mean"]([0.8, 0.6], factor=2.0)) == pytest.approx(0.7)
    assert yes(aggregation.AGGREGATORS["logodds_mean"]([0.8, 0.8], factor=2.0)) == pytest.approx(0.8)


def test_register_adds_a_method_under_its_name():
    method = aggregation.Aggregator("test-max", lambda p: np.array([0.0, 1.0]), "Always YES.")
    try:
        assert aggregation.register(method) is method
        assert aggregation.AGGREGATORS["test-max"] is method
        np.testing.assert_array_equal(aggregation.AGGREGATORS["test-max"]([0.2]), [0.0, 1.0])
    finally:
        aggregation.AGGREGATORS.pop("test-max", None)


def test_squeeze_keeps_the_floor_and_falls_back_to_uniform():
    # (m - 0.001) / Σ(m - 0.001) * (1 - 3 * 0.001) + 0.001 for medians 0.5, 0.25, 0.001
    np.testing.assert_allclose(
        aggregation.squeeze_multiple_choice([0.5, 0.25, 0.001]),
        [0.499 / 0.748 * 0.997 + 0.001, 0.249 / 0.748 * 0.997 + 0.001, 0.001],
        rtol=1e-12,
    )
    # every median at (or below) the floor: nothing to go on, the uniform forecast
    np.testing.assert_array_equal(aggregation.squeeze_multiple_choice([0.001, 0.001, 0.0005]), [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(aggregation.squeeze_multiple_choice([0.001] * 4), [0.25] * 4)
    # a median below the floor counts as at the floor
    np.testing.assert_allclose(
        aggregation.squeeze_multiple_choice([0.6, 0.0]), aggregation.squeeze_multiple_choice([0.6, 0.001])
    )
    np.testing.assert_allclose(aggregation.squeeze_multiple_choice([0.6, 0.0]), [0.999, 0.001])


@given(probability_lists, st.randoms())
def test_order_free_methods_match_their_formulas_in_any_order(values, rng):
    # the textbook formulas (statistics' mean and median; the logistic of the mean logit), on the
    # forecasts in any order
    def logit(p):
        return math.log(p / (1 - p))

    expected = {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "logodds_mean": 1 / (1 + math.exp(-statistics.fmean(logit(v) for v in values))),
    }
    shuffled = list(values)
    rng.shuffle(shuffled)
    for name, value in expected.items():
        for order in (values, shuffled):
            result = aggregation.AGGREGATORS[name](order)
            assert yes(result) == pytest.approx(value, rel=1e-9, abs=1e-12)
            assert result[0] == pytest.approx(1 - value, rel=1e-9, abs=1e-12)


@given(probability_lists)
def test_every_method_returns_a_distribution_within_the_forecasts(values):
    for name, method in aggregation.AGGREGATORS.items():
        result = method(values, factor=1.0)
        assert result.sum() == pytest.approx(1.0)
        if name != "extremized_logodds":
            assert min(values) - 1e-9 <= yes(result) <= max(values) + 1e-9


@given(
    st.integers(3, 6).flatmap(
        lambda k: st.lists(st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k), min_size=1, max_size=30)
    )
)
def test_multiple_choice_recency_weighted_median_stays_in_metaculus_range(rows):
    forecasts = np.array(rows) / np.array(rows).sum(axis=1, keepdims=True)
    k = forecasts.shape[1]
    result = aggregation.recency_weighted_median(forecasts)
    assert result.sum() == pytest.approx(1.0)
    assert np.all(result >= 0.001 - 1e-12)
    assert np.all(result <= 1 - (k - 1) * 0.001 + 1e-12)
