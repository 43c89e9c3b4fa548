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


def test_extremizing_pushes_away_from_half():
    # mean log-odds ln 4 (p = 0.8) times 2 -> odds 16 -> 16/17
    assert yes(aggregation.extremized_logodds([0.8, 0.8], factor=2.0)) == pytest.approx(16 / 17)
    assert yes(aggregation.extremized_logodds([0.8, 0.8], factor=1.0)) == pytest.approx(0.8)


def test_fit_extremizing_factor_learns_underconfidence():
    # Forecasters say 70% on questions that resolve YES 95% of the time: the fit extremizes.
    rng = np.random.default_rng(0)
    stats = [aggregation.mean_log_probabilities([[0.3, 0.7]] * 3) for _ in range(400)]
    outcomes = list((rng.random(400) < 0.95).astype(int))
    factor = aggregation.fit_extremizing_factor(stats, outcomes)
    assert factor > 2.0
    assert aggregation.fit_extremizing_factor([], []) == aggregation.DEFAULT_EXTREMIZING_FACTOR


def test_registry_names():
    assert set(aggregation.AGGREGATORS) >= {
        "mean",
        "median",
        "recency_weighted_median",
        "logodds_mean",
        "extremized_logodds",
    }
    assert aggregation.AGGREGATORS["extremized_logodds"].parameters == ("factor",)


@given(probability_lists, st.randoms())
def test_order_free_methods_ignore_forecaster_order(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    for name in ("mean", "median", "logodds_mean"):
        assert yes(aggregation.AGGREGATORS[name](values)) == pytest.approx(yes(aggregation.AGGREGATORS[name](shuffled)))


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
