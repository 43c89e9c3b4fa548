import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.continuous import build
from forecasting.continuous.grid import CdfError, Scale, quantile, validate_cdf

pytestmark = pytest.mark.filterwarnings("error")

U = np.linspace(0.0, 1.0, 201)
CLOSED = Scale(0.0, 100.0)
OPEN = Scale(0.0, 100.0, open_lower=True, open_upper=True)
ALL_BOUNDS = [
    Scale(0.0, 100.0),
    Scale(0.0, 100.0, open_lower=True),
    Scale(0.0, 100.0, open_upper=True),
    Scale(0.0, 100.0, open_lower=True, open_upper=True),
]


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def metaculus_standardize(cdf, lower_open, upper_open):
    """Metaculus's standardize_cdf (docs/openapi.yml), rewritten: fixed mix, then caps found by bisection."""
    cdf = np.asarray(cdf, dtype=float)
    lower_to = 0.0 if lower_open else cdf[0]
    upper_to = 1.0 if upper_open else cdf[-1]
    f = (cdf - lower_to) / (upper_to - lower_to)
    if lower_open and upper_open:
        cdf = 0.988 * f + 0.01 * U + 0.001
    elif lower_open:
        cdf = 0.989 * f + 0.01 * U + 0.001
    elif upper_open:
        cdf = 0.989 * f + 0.01 * U
    else:
        cdf = 0.99 * f + 0.01 * U
    pmf = np.diff(cdf, prepend=0, append=1)

    def cap_pmf(scale):
        return np.concatenate([pmf[:1], np.minimum(0.2, scale * pmf[1:-1]), pmf[-1:]])

    lo = hi = 1.0
    while cap_pmf(hi).sum() < 1.0:
        hi *= 1.2
    for _ in range(100):
        scale = 0.5 * (lo + hi)
        if cap_pmf(scale).sum() < 1.0:
            lo = scale
        else:
            hi = scale
        if hi - lo < 1e-12:
            break
    pmf = cap_pmf(scale)
    pmf[1:-1] *= (cdf[-1] - cdf[0]) / pmf[1:-1].sum()
    return np.cumsum(pmf)[:-1]


class TestSplitLogistic:
    @given(st.floats(-2, 2), st.floats(1e-3, 3), st.floats(1e-3, 3))
    def test_percentiles_are_exactly_the_inputs(self, median, left, right):
        low, high = median - left, median + right
        values = build.split_logistic_cdf([low, median, high], median, low, high)
        np.testing.assert_allclose(values, [0.1, 0.5, 0.9], rtol=1e-9)

    def test_accepts_decimals(self):
        assert build.split_logistic_cdf([Decimal("0.6")], 0.5, 0.4, 0.6)[0] == pytest.approx(0.9)

    def test_each_side_is_a_logistic(self):
        # left scale 0.1 / ln 9, right scale 0.3 / ln 9
        u = np.array([0.1, 0.35, 0.5, 0.65, 0.95])
        expected = np.where(u < 0.5, logistic((u - 0.5) * math.log(9) / 0.1), logistic((u - 0.5) * math.log(9) / 0.3))
        np.testing.assert_allclose(build.split_logistic_cdf(u, 0.5, 0.4, 0.8), expected, rtol=1e-12)


class TestComponents:
    def test_median_and_interval_round_trip(self):
        cdf = build.cdf_from_median_interval(40.0, 30.0, 60.0, OPEN)
        validate_cdf(cdf, OPEN)
        # standardising mixes in about 1% of the reference forecast (the logistic's tails are thin): a small shift
        np.testing.assert_allclose(quantile(cdf, [0.1, 0.5, 0.9]), [0.3, 0.4, 0.6], atol=5e-3)

    def test_wide_forecast_is_left_as_the_mixture(self):
        # steep enough nowhere to need standardising: the CDF is the split logistic itself
        cdf = build.cdf_from_median_interval(50.0, 20.0, 90.0, OPEN)
        expected = np.where(U < 0.5, logistic((U - 0.5) * math.log(9) / 0.3), logistic((U - 0.5) * math.log(9) / 0.4))
        np.testing.assert_allclose(cdf, expected, atol=1e-10)

    def test_log_scale_shapes_in_log_space(self):
        scale = Scale(1.0, 1000.0, zero_point=0.0, open_lower=True, open_upper=True)
        cdf = build.cdf_from_median_interval(10.0, 3.0, 30.0, scale)
        validate_cdf(cdf, scale)
        expected = [math.log10(3.0) / 3, 1 / 3, math.log10(30.0) / 3]  # log10(x) / 3 on [1, 1000]
        np.testing.assert_allclose(quantile(cdf, [0.1, 0.5, 0.9]), expected, atol=5e-3)

    def test_mixture_is_the_weighted_sum(self):
        first = (30.0, 10.0, 45.0, 3.0)
        second = (70.0, 60.0, 95.0, 1.0)
        cdf = build.cdf_from_components([first, second], OPEN)

        def component(m, low, high):
            m, low, high = m / 100, low / 100, high / 100
            x = U - m
            return np.where(x < 0, logistic(x * math.log(9) / (m - low)), logistic(x * math.log(9) / (high - m)))

        expected = 0.75 * component(*first[:3]) + 0.25 * component(*second[:3])
        np.testing.assert_allclose(cdf, expected, atol=1e-10)

    def test_narrow_interval_is_widened_to_what_the_grid_shows(self):
        # Metaculus's minimum logistic scale 0.007 / ln 3: percentiles 0.014 of the range from the median
        half = math.log(9) * 0.007 / math.log(3)
        cdf = build.cdf_from_median_interval(50.0, 49.99, 50.01, CLOSED)
        assert 0.18 < np.diff(cdf).max() < 0.2  # two buckets of about 0.187 either side of 50
        np.testing.assert_allclose(quantile(cdf, [0.1, 0.5, 0.9]), [0.5 - half, 0.5, 0.5 + half], atol=1e-3)
        one_sided = build.cdf_from_median_interval(50.0, 49.99, 60.0, CLOSED)
        np.testing.assert_allclose(quantile(one_sided, [0.1, 0.9]), [0.5 - half, 0.6], atol=2e-3)
        wide_enough = build.cdf_from_median_interval(50.0, 48.5, 51.5, CLOSED)
        np.testing.assert_allclose(quantile(wide_enough, [0.1, 0.9]), [0.485, 0.515], atol=1e-3)

    def test_weights_are_normalised(self):
        a = build.cdf_from_components([(30, 20, 40, 2.0), (60, 50, 80, 2.0)], OPEN)
        b = build.cdf_from_components([(30, 20, 40, 0.5), (60, 50, 80, 0.5)], OPEN)
        np.testing.assert_allclose(a, b)
        c = build.cdf_from_components([(60, 50, 80, 1.0), (30, 20, 40, 1.0)], OPEN)
        np.testing.assert_allclose(a, c)

    def test_closed_bounds_remove_the_tails(self):
        cdf = build.cdf_from_median_interval(10.0, 2.0, 30.0, CLOSED)
        assert cdf[0] == 0.0 and cdf[-1] == 1.0
        validate_cdf(cdf, CLOSED)
        # renormalised: the in-range shape of the logistic, (F - F(0)) / (F(1) - F(0)), before the 1% mix
        f = np.where(U < 0.1, logistic((U - 0.1) * math.log(9) / 0.08), logistic((U - 0.1) * math.log(9) / 0.2))
        shape = (f - f[0]) / (f[-1] - f[0])
        assert np.abs(cdf - shape).max() < 0.011

    def test_open_bounds_keep_the_tails(self):
        cdf = build.cdf_from_median_interval(10.0, 2.0, 60.0, OPEN)
        assert cdf[0] == pytest.approx(logistic(-0.1 * math.log(9) / 0.08), abs=1e-10)
        assert 1 - cdf[-1] == pytest.approx(1 - logistic(0.9 * math.log(9) / 0.5), abs=1e-10)

    @pytest.mark.parametrize(
        "components, message",
        [
            ([], "a forecast has 1 to 3 components, got 0"),
            ([(50, 40, 60, 1)] * 4, "a forecast has 1 to 3 components, got 4"),
            ([(50, 40, 60)], "each component is (median, low, high, weight)"),
            ([(50, 40, 60, 0)], "component weights must be positive numbers"),
            ([(50, 40, 60, -1)], "component weights must be positive numbers"),
            ([(50, 40, 60, math.nan)], "component weights must be positive numbers"),
            ([(50, 50, 60, 1)], "the interval must contain the median: low < median < high"),
            ([(50, 40, 50, 1)], "the interval must contain the median: low < median < high"),
            ([(50, 60, 40, 1)], "the interval must contain the median: low < median < high"),
            ([(50, 40, 60, 1), (50, 60, 40, 1)], "the interval must contain the median: low < median < high"),
            ([(math.nan, 40, 60, 1)], "the median and the interval must be finite numbers"),
            ([(50, -math.inf, 60, 1)], "the median and the interval must be finite numbers"),
        ],
    )
    def test_rejects_bad_components(self, components, message):
        with pytest.raises(CdfError) as error:
            build.cdf_from_components(components, OPEN)
        assert str(error.value) == message

    def test_rejects_values_beyond_the_zero_point(self):
        below = Scale(-1000.0, -1.0, zero_point=0.0, open_upper=True)
        with pytest.raises(CdfError) as error:
            build.cdf_from_median_interval(-10.0, -30.0, 5.0, below)
        assert str(error.value) == "on this logarithmic scale every value must lie below the zero point 0.0"
        scale = Scale(1.0, 1000.0, zero_point=0.0, open_lower=True)
        with pytest.raises(CdfError) as error:
            build.cdf_from_median_interval(10.0, -5.0, 30.0, scale)
        assert str(error.value) == "on this logarithmic scale every value must lie above the zero point 0.0"

    def test_values_too_close_for_the_range_give_the_narrowest_forecast(self):
        # distinct values, one position (x / 1e300 underflows): widened like any too narrow interval
        scale = Scale(0.0, 1e300)
        narrowest = build.cdf_from_median_interval(0.0, -1e-300, 1e-300, scale)
        np.testing.assert_array_equal(build.cdf_from_median_interval(2e-320, 1e-320, 3e-320, scale), narrowest)
        validate_cdf(narrowest, scale)

    def test_rejects_a_forecast_entirely_outside_closed_bounds(self):
        with pytest.raises(CdfError) as error:
            build.cdf_from_median_interval(500.0, 499.0, 501.0, CLOSED)
        assert str(error.value) == "the forecast puts almost no probability inside the range, and its bounds are closed"
        # with open bounds the tail beyond the range is allowed
        validate_cdf(build.cdf_from_median_interval(500.0, 499.0, 501.0, OPEN), OPEN)

    @settings(max_examples=60, deadline=None)
    @given(
        st.sampled_from(ALL_BOUNDS),
        st.lists(
            st.tuples(st.floats(0.0, 1.0), st.floats(1e-4, 2.0), st.floats(1e-4, 2.0), st.floats(0.01, 10.0)),
            min_size=1,
            max_size=3,
        ),
    )
    def test_always_valid(self, bounds, components):
        scale = Scale(10.0, 20.0, bounds.open_lower, bounds.open_upper)
        real = [(10 + 10 * m, 10 + 10 * (m - left), 10 + 10 * (m + right), w) for m, left, right, w in components]
        validate_cdf(build.cdf_from_components(real, scale), scale)


class TestQuantiles:
    def test_linear_between_points_with_exponential_tails(self):
        cdf = build.cdf_from_quantiles([(0.3, 40.0), (0.7, 60.0)], OPEN)
        np.testing.assert_allclose(cdf[80:121], np.linspace(0.3, 0.7, 41), atol=1e-10)
        # slope 2 per unit: below 0.4 the tail is 0.3 exp(2 (u - 0.4) / 0.3), above 0.6 mirrored
        np.testing.assert_allclose(cdf[:80], 0.3 * np.exp(2 * (U[:80] - 0.4) / 0.3), atol=1e-10)
        np.testing.assert_allclose(cdf[121:], 1 - 0.3 * np.exp(-2 * (U[121:] - 0.6) / 0.3), atol=1e-10)
        validate_cdf(cdf, OPEN)

    def test_passes_through_the_points(self):
        points = [(0.1, 15.0), (0.25, 30.0), (0.5, 42.0), (0.75, 55.0), (0.9, 80.0)]
        cdf = build.cdf_from_quantiles(points, OPEN)
        validate_cdf(cdf, OPEN)
        np.testing.assert_allclose(quantile(cdf, [p for p, _ in points]), [v / 100 for _, v in points], atol=1e-9)

    def test_closed_bounds(self):
        cdf = build.cdf_from_quantiles([(0.2, 10.0), (0.5, 20.0), (0.8, 50.0)], CLOSED)
        validate_cdf(cdf, CLOSED)
        assert quantile(cdf, 0.5) == pytest.approx(0.2, abs=0.02)

    @pytest.mark.parametrize(
        "points, message",
        [
            ([(0.5, 50.0)], "give at least two (probability, value) quantiles"),
            ([(0.5, 50.0, 1.0), (0.6, 60.0)], "give at least two (probability, value) quantiles"),
            ([(0.0, 10.0), (0.5, 50.0)], "quantile probabilities must lie strictly between 0 and 1"),
            ([(0.5, 10.0), (1.0, 50.0)], "quantile probabilities must lie strictly between 0 and 1"),
            ([(0.5, 10.0), (0.4, 50.0)], "quantiles must be strictly increasing in both probability and value"),
            ([(0.5, 10.0), (0.5, 50.0)], "quantiles must be strictly increasing in both probability and value"),
            ([(0.4, 50.0), (0.5, 50.0)], "quantiles must be strictly increasing in both probability and value"),
            ([(0.4, 50.0), (0.5, 40.0)], "quantiles must be strictly increasing in both probability and value"),
            ([(0.4, math.nan), (0.5, 40.0)], "quantiles must be finite numbers"),
            ([(math.inf, 30.0), (0.5, 40.0)], "quantiles must be finite numbers"),
        ],
    )
    def test_rejects_bad_quantiles(self, points, message):
        with pytest.raises(CdfError) as error:
            build.cdf_from_quantiles(points, OPEN)
        assert str(error.value) == message

    def test_rejects_values_beyond_the_zero_point(self):
        scale = Scale(1.0, 1000.0, zero_point=0.0, open_lower=True)
        with pytest.raises(CdfError) as error:
            build.cdf_from_quantiles([(0.2, -1.0), (0.5, 20.0)], scale)
        assert str(error.value) == "on this logarithmic scale every value must lie above the zero point 0.0"

    def test_rejects_points_too_close_for_the_range(self):
        with pytest.raises(CdfError) as error:
            build.cdf_from_quantiles([(0.2, 1e-320), (0.5, 2e-320)], Scale(0.0, 1e300))
        assert str(error.value) == "the quantiles are too close together for the question's range"

    @settings(max_examples=40, deadline=None)
    @given(
        st.sampled_from(ALL_BOUNDS),
        st.lists(st.floats(-30.0, 130.0), min_size=2, max_size=6, unique=True),
        st.lists(st.floats(0.01, 0.99), min_size=6, max_size=6, unique=True),
    )
    def test_always_valid(self, scale, values, probabilities):
        points = list(zip(sorted(probabilities)[: len(values)], sorted(values), strict=True))
        if min(np.diff([v for _, v in points])) < 1e-6:
            return
        if (not scale.open_lower and points[-1][1] <= 1.0) or (not scale.open_upper and points[0][1] >= 99.0):
            return  # nearly all the mass beyond a closed bound
        validate_cdf(build.cdf_from_quantiles(points, scale), scale)


class TestStandardise:
    @pytest.mark.parametrize("scale", ALL_BOUNDS)
    def test_flat_forecast_gets_exactly_metaculus_mix(self, scale):
        # flat stretches need the full weight of Metaculus's reference forecast; no step exceeds the cap
        shape = np.clip((U - 0.3) / 0.4, 0.0, 1.0)
        expected = metaculus_standardize(shape, scale.open_lower, scale.open_upper)
        result = build.standardise(shape, scale)
        np.testing.assert_allclose(result, expected, atol=1e-10)
        validate_cdf(result, scale)

    @pytest.mark.parametrize("scale", ALL_BOUNDS)
    def test_spike_capped_like_metaculus(self, scale):
        shape = np.clip((U - 0.5) / 0.01, 0.0, 1.0)  # half the mass in each of two steps
        expected = metaculus_standardize(shape, scale.open_lower, scale.open_upper)
        result = build.standardise(shape, scale)
        np.testing.assert_allclose(result, expected, atol=1e-9)
        assert np.diff(result).max() == pytest.approx(0.2)
        validate_cdf(result, scale)

    def test_metaculus_constants(self):
        # both bounds open: 0.988 F + 0.01 u + 0.001, so 0.1% in each tail and at least 1% spread inside
        result = build.standardise(np.clip((U - 0.3) / 0.4, 0.0, 1.0), OPEN)
        assert result[0] == pytest.approx(0.001, abs=1e-12)
        assert result[-1] == pytest.approx(0.999, abs=1e-12)
        np.testing.assert_allclose(np.diff(result)[:60], 0.00005, atol=1e-12)
        np.testing.assert_allclose(np.diff(result)[140:], 0.00005, atol=1e-12)
        np.testing.assert_allclose(np.diff(result)[60:140], 0.00005 + 0.988 / 80, atol=1e-12)

    def test_valid_forecast_is_unchanged(self):
        cdf = 0.05 + 0.9 * U**1.1
        np.testing.assert_array_equal(build.standardise(cdf, OPEN), np.round(cdf, 10))
        assert not np.array_equal(np.round(cdf, 10), np.round(cdf, 11))
        np.testing.assert_array_equal(build.standardise(U, CLOSED), np.round(U, 10))

    def test_minimal_change(self):
        # only the lower tail is short (0.0005 instead of 0.001): the weight is what that needs, far under 1.2%
        cdf = 0.0005 + (0.9995 - 0.05) * U
        result = build.standardise(cdf, OPEN)
        assert result[0] == pytest.approx(0.001, abs=1e-12)
        weight = (0.001 - 0.0005) / (1 / 12 - 0.0005)  # the reference forecast has 1/12 below the range
        np.testing.assert_allclose(result, (1 - weight) * cdf + weight * (0.001 + 0.01 * U) / 0.012, atol=1e-10)

    def test_short_upper_tail(self):
        cdf = 0.05 + (0.9998 - 0.05) * U
        result = build.standardise(cdf, OPEN)
        assert result[-1] == pytest.approx(0.999, abs=1e-12)
        validate_cdf(result, OPEN)

    def test_idempotent(self):
        once = build.standardise(np.clip((U - 0.2) / 0.05, 0, 1), OPEN)
        np.testing.assert_array_equal(build.standardise(once, OPEN), once)

    def test_closed_bounds_renormalise(self):
        cdf = 0.1 + 0.8 * U  # 10% below and above a closed range: dropped
        np.testing.assert_allclose(build.standardise(cdf, CLOSED), U, atol=1e-10)
        result = build.standardise(cdf, Scale(0.0, 1.0, open_upper=True))
        np.testing.assert_allclose(result, (0.8 * U) / 0.9, atol=1e-10)

    def test_repairs_decreasing_and_out_of_range_values(self):
        cdf = U.copy()
        cdf[50], cdf[-1] = 0.1, 1.3
        validate_cdf(build.standardise(cdf, CLOSED), CLOSED)
        # values below 0 / above 1 count as 0 / 1; a decrease is flattened
        cdf = 0.05 + 0.9 * U
        clipped = cdf.copy()
        cdf[:3], clipped[:3] = [-0.5, -0.2, 0.0], 0.0
        cdf[-3:], clipped[-3:] = [1.0, 1.4, 1.2], 1.0
        cdf[100], clipped[100] = 0.3, clipped[99]
        np.testing.assert_array_equal(build.standardise(cdf, OPEN), build.standardise(clipped, OPEN))

    @pytest.mark.parametrize(
        "cdf, message",
        [
            (U[:200], "the CDF must have 201 values, got 200"),
            (np.vstack([U, U]), "the CDF must have 201 values, got 402"),
            (np.full(201, math.nan), "the CDF's values must be finite numbers"),
        ],
    )
    def test_rejects_malformed_input(self, cdf, message):
        with pytest.raises(CdfError) as error:
            build.standardise(cdf, CLOSED)
        assert str(error.value) == message

    def test_keeps_a_millionth_inside_closed_bounds(self):
        cdf = np.zeros(201)
        cdf[-1] = 0.999e-6  # under a millionth inside: the reader's forecast is all outside
        with pytest.raises(CdfError, match="almost no probability"):
            build.standardise(cdf, CLOSED)
        cdf[-1] = 1e-6
        validate_cdf(build.standardise(cdf, CLOSED), CLOSED)

    def test_rejects_no_mass_inside_closed_bounds(self):
        with pytest.raises(CdfError, match="almost no probability"):
            build.standardise(np.full(201, 0.5), CLOSED)
        with pytest.raises(CdfError, match="almost no probability"):  # all the mass above a closed upper bound
            build.standardise(np.zeros(201), Scale(0, 1, open_lower=True))
        with pytest.raises(CdfError, match="almost no probability"):
            build.standardise(np.full(201, 1 - 1e-7), Scale(0, 1, open_upper=True))
        build.standardise(np.full(201, 1 - 1e-5), Scale(0, 1, open_upper=True))  # 1e-5 inside is kept
        # all the mass beyond an open bound is possible: the standardised forecast keeps 1% inside
        validate_cdf(build.standardise(np.full(201, 0.5), OPEN), OPEN)
        validate_cdf(build.standardise(np.ones(201), Scale(0, 1, open_lower=True)), Scale(0, 1, open_lower=True))

    def test_reference_forecast(self):
        np.testing.assert_allclose(build.reference_cdf(OPEN), (0.001 + 0.01 * U) / 0.012)
        np.testing.assert_allclose(build.reference_cdf(Scale(0, 1, open_lower=True)), (0.001 + 0.01 * U) / 0.011)
        np.testing.assert_allclose(build.reference_cdf(Scale(0, 1, open_upper=True)), 0.01 * U / 0.011)
        np.testing.assert_allclose(build.reference_cdf(CLOSED), U)

    @settings(max_examples=80, deadline=None)
    @given(
        st.sampled_from(ALL_BOUNDS),
        st.lists(st.floats(0.0, 1.0), min_size=201, max_size=201),
        st.integers(0, 3),
    )
    def test_output_always_valid(self, scale, values, spikes):
        cdf = np.sort(values)
        for k in range(spikes):  # concentrate mass in a few steps
            cdf[60 * k + 10 :] = np.maximum(cdf[60 * k + 10 :], min(1.0, 0.3 * (k + 1)))
        if not scale.open_lower or not scale.open_upper:
            lower = 0.0 if scale.open_lower else cdf[0]
            upper = 1.0 if scale.open_upper else cdf[-1]
            if upper - lower < 1e-3:
                return
        result = build.standardise(cdf, scale)
        validate_cdf(result, scale)
        np.testing.assert_array_equal(build.standardise(result, scale), result)
