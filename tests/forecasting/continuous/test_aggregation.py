import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.continuous import aggregation
from forecasting.continuous.build import cdf_from_median_interval
from forecasting.continuous.grid import Scale, quantile, validate_cdf

pytestmark = pytest.mark.filterwarnings("error")

U = np.linspace(0.0, 1.0, 201)
CLOSED = Scale(0.0, 100.0)
OPEN = Scale(0.0, 100.0, open_lower=True, open_upper=True)


def tails(below, above):
    return below + (1 - below - above) * U


def logistic_cdf(median, scale, below=0.0, above=0.0):
    """A valid CDF: a logistic shape (2% uniform mixed in) squeezed between the given tails."""
    f = 1 / (1 + np.exp(-(U - median) / scale))
    shape = (f - f[0]) / (f[-1] - f[0])
    return below + (1 - below - above) * (0.98 * shape + 0.02 * U)


class TestLinearPool:
    def test_mean_by_hand(self):
        a, b = tails(0.1, 0.1), tails(0.3, 0.1)
        np.testing.assert_allclose(aggregation.linear_pool([a, b]), tails(0.2, 0.1))
        np.testing.assert_allclose(aggregation.linear_pool([a, b], [3.0, 1.0]), tails(0.15, 0.1))
        np.testing.assert_allclose(aggregation.linear_pool([a, b], [0.0, 2.0]), b)
        np.testing.assert_allclose(aggregation.linear_pool([a, b], [0.125, 0.125]), tails(0.2, 0.1))
        np.testing.assert_allclose(aggregation.linear_pool([a, b], [Decimal(3), Decimal(1)]), tails(0.15, 0.1))
        np.testing.assert_allclose(aggregation.linear_pool(a), a)

    def test_order_of_rows_does_not_matter(self):
        cdfs = np.array([logistic_cdf(m, 0.05, 0.02, 0.03) for m in (0.2, 0.5, 0.7)])
        weights = np.array([1.0, 2.0, 5.0])
        order = [2, 0, 1]
        np.testing.assert_allclose(
            aggregation.linear_pool(cdfs[order], weights[order]), aggregation.linear_pool(cdfs, weights), atol=1e-15
        )

    def test_result_is_valid(self):
        cdfs = [cdf_from_median_interval(m, m - 5, m + 20, OPEN) for m in (20.0, 50.0, 60.0)]
        validate_cdf(aggregation.linear_pool(cdfs), OPEN)

    @pytest.mark.parametrize("weights", [[1.0], [2.0, -1.0], [0.0, 0.0], [1.0, math.nan], [[1.0, 1.0]]])
    def test_rejects_bad_weights(self, weights):
        with pytest.raises(ValueError) as error:
            aggregation.linear_pool([U, U], weights)
        assert str(error.value) == "weights must be n non-negative numbers, not all zero"

    @pytest.mark.parametrize(
        "cdfs, message",
        [
            (np.zeros((0, 201)), "an aggregate needs at least one forecast"),
            (np.zeros((2, 200)), "CDFs must be an (n forecasters, 201) array"),
            (np.full((1, 201), math.nan), "CDF values must be finite numbers"),
        ],
    )
    def test_rejects_bad_cdfs(self, cdfs, message):
        for method in (aggregation.linear_pool, aggregation.recency_weighted_mean, aggregation.quantile_average):
            with pytest.raises(ValueError) as error:
                method(cdfs)
            assert str(error.value) == message


class TestRecency:
    def test_weights(self):
        np.testing.assert_array_equal(aggregation.recency_weights(0), [])
        np.testing.assert_array_equal(aggregation.recency_weights(1), [1.0])
        np.testing.assert_array_equal(aggregation.recency_weights(2), [1.0, 1.0])
        expected = [math.exp(math.sqrt(i) - math.sqrt(3)) for i in (1, 2, 3)]
        np.testing.assert_allclose(aggregation.recency_weights(3), expected)
        assert aggregation.recency_weights(10)[-1] == 1.0
        assert np.all(np.diff(aggregation.recency_weights(10)) > 0)

    def test_recency_weighted_mean_by_hand(self):
        cdfs = np.array([tails(0.3, 0.1), tails(0.1, 0.1), tails(0.1, 0.3)])
        w = np.exp(np.sqrt([1.0, 2.0, 3.0]) - math.sqrt(3))
        expected = (w[:, None] * cdfs).sum(axis=0) / w.sum()
        np.testing.assert_allclose(aggregation.recency_weighted_mean(cdfs), expected)
        # newest last: reversing the rows changes the aggregate
        assert not np.allclose(aggregation.recency_weighted_mean(cdfs[::-1]), expected)

    def test_two_forecasts_are_weighted_equally(self):
        a, b = tails(0.3, 0.1), tails(0.1, 0.1)
        np.testing.assert_allclose(aggregation.recency_weighted_mean([a, b]), tails(0.2, 0.1))


class TestQuantileAverage:
    def test_identical_forecasts_give_the_same_forecast(self):
        cdf = logistic_cdf(0.4, 0.05, 0.02, 0.03)
        np.testing.assert_allclose(aggregation.quantile_average([cdf, cdf, cdf]), cdf, atol=1e-9)

    def test_shifted_shapes_average_their_positions(self):
        # closed bounds, the same shape shifted: the quantile average's quantiles are the mean quantiles
        a, b = logistic_cdf(0.3, 0.04), logistic_cdf(0.6, 0.04)
        result = aggregation.quantile_average([a, b])
        validate_cdf(result, CLOSED)
        # exact at the grid points: the mean of the quantiles at level result[k] is k / 200
        levels = result[1:-1]
        np.testing.assert_allclose((quantile(a, levels) + quantile(b, levels)) / 2, U[1:-1], atol=1e-7)
        for q in (0.1, 0.25, 0.5, 0.75, 0.9):  # between grid points the result is linear: close
            assert quantile(result, q) == pytest.approx((quantile(a, q) + quantile(b, q)) / 2, abs=2e-4)
        # unlike the linear pool, which is bimodal with its median between the two
        assert quantile(result, 0.1) > quantile(aggregation.linear_pool([a, b]), 0.1) + 0.05

    def test_weights(self):
        a, b = logistic_cdf(0.3, 0.04), logistic_cdf(0.6, 0.04)
        result = aggregation.quantile_average([a, b], [3.0, 1.0])
        levels = result[1:-1]
        np.testing.assert_allclose(0.75 * quantile(a, levels) + 0.25 * quantile(b, levels), U[1:-1], atol=1e-7)

    def test_tail_masses_are_averaged(self):
        a, b = logistic_cdf(0.3, 0.05, 0.02, 0.1), logistic_cdf(0.5, 0.1, 0.04, 0.02)
        result = aggregation.quantile_average([a, b])
        assert result[0] == pytest.approx(0.03)
        assert 1 - result[-1] == pytest.approx(0.06)
        validate_cdf(result, OPEN)
        # inside: the in-range shapes are averaged, and rescaled to the averaged inside mass
        levels = ((result - 0.03) / 0.91)[1:-1]
        shapes = [(c - c[0]) / (c[-1] - c[0]) for c in (a, b)]
        mean_quantiles = (quantile(shapes[0], levels) + quantile(shapes[1], levels)) / 2
        np.testing.assert_allclose(mean_quantiles, U[1:-1], atol=1e-7)

    def test_bounds_follow_the_forecasts(self):
        result = aggregation.quantile_average([logistic_cdf(0.3, 0.05, 0.0, 0.1), logistic_cdf(0.5, 0.1, 0.0, 0.02)])
        assert result[0] == 0.0
        validate_cdf(result, Scale(0.0, 1.0, open_upper=True))

    def test_order_of_rows_does_not_matter(self):
        cdfs = np.array([logistic_cdf(m, s, 0.01, 0.02) for m, s in ((0.2, 0.03), (0.5, 0.1), (0.8, 0.05))])
        weights = np.array([1.0, 2.0, 4.0])
        order = [1, 2, 0]
        np.testing.assert_allclose(
            aggregation.quantile_average(cdfs[order], weights[order]),
            aggregation.quantile_average(cdfs, weights),
            atol=1e-12,
        )

    def test_rejects_forecasts_without_mass_inside(self):
        with pytest.raises(ValueError) as error:
            aggregation.quantile_average([U, np.full(201, 0.5)])
        assert str(error.value) == "every forecast must put some probability inside the range"

    def test_repairs_values_outside_zero_one(self):
        a, b = logistic_cdf(0.3, 0.05), logistic_cdf(0.6, 0.1)
        raw = a.copy()
        raw[:3], raw[-3:] = -0.2, 1.3
        clipped = a.copy()
        clipped[:3], clipped[-3:] = 0.0, 1.0
        np.testing.assert_array_equal(
            aggregation.quantile_average([raw, b]), aggregation.quantile_average([clipped, b])
        )

    @settings(max_examples=30, deadline=None)
    @given(
        st.lists(st.tuples(st.floats(-0.2, 1.2), st.floats(0.02, 0.5)), min_size=1, max_size=5),
        st.sampled_from([(0.0, 0.0), (0.01, 0.0), (0.0, 0.2), (0.05, 0.05)]),
    )
    def test_always_valid(self, params, tail_masses):
        below, above = tail_masses
        scale = Scale(0.0, 1.0, open_lower=below > 0, open_upper=above > 0)
        cdfs = [logistic_cdf(m, s, below, above) for m, s in params]
        result = aggregation.quantile_average(cdfs)
        validate_cdf(result, scale)
        assert result[0] == pytest.approx(below, abs=1e-9)
        assert result[-1] == pytest.approx(1 - above, abs=1e-9)


def mean_quantile_inverse_by_bisection(shapes, weights):
    """The definition, slowly: the least level where sum_i w_i Q_i reaches each grid position."""
    low, high = np.zeros(201), np.ones(201)
    for _ in range(60):
        middle = (low + high) / 2
        mean = sum(w * np.asarray(quantile(shape, middle)) for shape, w in zip(shapes, weights, strict=True))
        short = mean < U
        low, high = np.where(short, middle, low), np.where(short, high, middle)
    return (low + high) / 2


class TestQuantileAverageInversion:
    """``_inverse_mean_quantile`` (one sort) against the bisection of the mean quantile function it replaced."""

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.tuples(st.floats(0.05, 0.95), st.floats(0.01, 0.3), st.floats(0.1, 5.0)), min_size=1, max_size=6)
    )
    def test_equals_the_bisection_of_the_definition(self, params):
        shapes = np.array([logistic_cdf(m, s) for m, s, _ in params])
        shapes = (shapes - shapes[:, :1]) / (shapes[:, -1:] - shapes[:, :1])
        weights = np.array([w for *_, w in params]) / sum(w for *_, w in params)
        expected = mean_quantile_inverse_by_bisection(shapes, weights)
        result = aggregation._inverse_mean_quantile(shapes, weights)
        np.testing.assert_allclose(result[1:-1], expected[1:-1], atol=1e-9)

    def test_flat_stretches_are_steps_of_the_quantile_function(self):
        # a forecast with no mass between grid points 60 and 140 (its shape is flat at 0.3 there) and a
        # smooth one: the mean quantile function jumps at 0.3, so its inverse stays at 0.3 across the jump
        flat = np.r_[np.linspace(0.0, 0.3, 61), np.full(80, 0.3), np.linspace(0.3, 1.0, 60)]
        smooth = logistic_cdf(0.5, 0.1)
        smooth = (smooth - smooth[0]) / (smooth[-1] - smooth[0])
        shapes, weights = np.array([smooth, flat]), np.array([0.5, 0.5])  # the flat one not first
        result = aggregation._inverse_mean_quantile(shapes, weights)
        np.testing.assert_allclose(result, mean_quantile_inverse_by_bisection(shapes, weights), atol=1e-9)
        assert np.sum(np.isclose(result, 0.3)) >= 30  # flat across the jump of 0.5 x 80 / 200 = 0.2

    def test_a_shape_flat_at_its_start_and_its_end(self):
        # no mass in the first 40 buckets, all of it in the next one, none after
        lumpy = np.r_[np.zeros(40), 0.5, np.ones(160)]
        shapes, weights = np.array([lumpy, np.linspace(0.0, 1.0, 201)]), np.array([0.25, 0.75])
        result = aggregation._inverse_mean_quantile(shapes, weights)
        np.testing.assert_allclose(result, mean_quantile_inverse_by_bisection(shapes, weights), atol=1e-9)
        assert result[0] == 0.0 and result[-1] == 1.0


class TestSummary:
    def test_uniform_closed(self):
        result = aggregation.summary(U, CLOSED)
        assert result == pytest.approx({"median": 50.0, "low": 10.0, "high": 90.0, "below": 0.0, "above": 0.0})

    def test_log_scale_in_real_units(self):
        result = aggregation.summary(U, Scale(1.0, 1000.0, zero_point=0.0))
        assert result["median"] == pytest.approx(math.sqrt(1000.0))
        assert result["low"] == pytest.approx(1000**0.1)
        assert result["high"] == pytest.approx(1000**0.9)

    def test_percentiles_beyond_the_range_are_none(self):
        result = aggregation.summary(tails(0.15, 0.12), OPEN)
        assert result["low"] is None and result["high"] is None
        assert result["median"] == pytest.approx(50 * (0.35 / 0.73) / 0.5, rel=1e-9)
        assert result["below"] == pytest.approx(0.15)
        assert result["above"] == pytest.approx(0.12)
        at_the_edges = aggregation.summary(tails(0.1, 0.1), OPEN)
        assert (at_the_edges["low"], at_the_edges["high"]) == pytest.approx((0.0, 100.0))

    def test_types(self):
        result = aggregation.summary(tails(0.05, 0.05), OPEN)
        assert all(type(value) is float for value in result.values())
        decimals = aggregation.summary([Decimal(k) / 200 for k in range(201)], CLOSED)
        assert decimals == pytest.approx({"median": 50.0, "low": 10.0, "high": 90.0, "below": 0.0, "above": 0.0})
