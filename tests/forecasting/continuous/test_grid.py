import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.continuous import grid
from forecasting.continuous.grid import CdfError, Scale

pytestmark = pytest.mark.filterwarnings("error")  # numpy's warnings too: no division by zero slips through

UNIFORM = np.linspace(0.0, 1.0, 201)
OPEN = Scale(0.0, 100.0, open_lower=True, open_upper=True)
CLOSED = Scale(0.0, 100.0)


def metaculus_unscaled(x, range_min, range_max, zero_point):
    """Metaculus's scaled_location_to_unscaled_location, verbatim (utils/the_math/formulas.py)."""
    if zero_point is None:
        return (x - range_min) / (range_max - range_min)
    deriv_ratio = (range_max - zero_point) / (range_min - zero_point)
    return (
        np.log((x - range_min) * (deriv_ratio - 1) + (range_max - range_min)) - np.log(range_max - range_min)
    ) / np.log(deriv_ratio)


def open_tails(below=0.05, above=0.05):
    """A valid CDF for open bounds: the given tails, uniform in between."""
    return below + (1 - below - above) * UNIFORM


class TestScale:
    def test_linear_positions_by_hand(self):
        scale = Scale(10.0, 30.0)
        assert scale.to_unit(15.0) == pytest.approx(0.25)
        assert scale.to_unit(10.0) == 0.0
        assert scale.to_unit(30.0) == 1.0
        np.testing.assert_allclose(scale.to_unit([5.0, 40.0]), [-0.25, 1.5])
        assert scale.from_unit(0.75) == pytest.approx(25.0)
        assert type(scale.to_unit(12.0)) is float
        assert type(scale.from_unit(0.5)) is float
        assert type(Scale(1.0, 10.0, zero_point=0.0).to_unit(5.0)) is float
        assert type(Scale(1.0, 10.0, zero_point=0.0).from_unit(0.5)) is float

    def test_accepts_decimals_from_the_database(self):
        assert Scale(10.0, 30.0).to_unit(Decimal("15")) == pytest.approx(0.25)
        assert Scale(1.0, 100.0, zero_point=0.0).to_unit(Decimal("10")) == pytest.approx(0.5)
        assert Scale(10.0, 30.0).from_unit(Decimal("0.5")) == pytest.approx(20.0)
        assert Scale(1.0, 100.0, zero_point=0.0).from_unit(Decimal("0.5")) == pytest.approx(10.0)

    def test_log_scale_is_geometric(self):
        scale = Scale(1.0, 1000.0, zero_point=0.0)
        np.testing.assert_allclose(scale.to_unit([1.0, 10.0, 100.0, 1000.0]), [0, 1 / 3, 2 / 3, 1], atol=1e-12)
        assert scale.from_unit(0.5) == pytest.approx(math.sqrt(1000.0))
        assert scale.to_unit(10_000.0) == pytest.approx(4 / 3)
        assert scale.to_unit(0.1) == pytest.approx(-1 / 3)
        assert scale.from_unit(1e6) == math.inf  # far beyond the range, without an overflow warning
        assert scale.from_unit(-math.inf) == 0.0  # the zero point
        assert math.isnan(scale.to_unit(math.nan))

    def test_log_scale_with_zero_point_above_the_range(self):
        scale = Scale(-1000.0, -1.0, zero_point=0.0)
        # r = (max - zp) / (min - zp) = 0.001: position ln(x / -1000) / ln(0.001)
        assert scale.to_unit(-10.0) == pytest.approx(2 / 3)
        assert scale.from_unit(1 / 3) == pytest.approx(-100.0)
        assert scale.to_unit(0.0) == math.inf  # the zero point itself: infinitely far above
        assert scale.to_unit(5.0) == math.inf

    def test_values_beyond_the_zero_point_are_infinitely_below(self):
        scale = Scale(1.0, 100.0, zero_point=0.0)
        np.testing.assert_array_equal(scale.to_unit([0.0, -3.0, -math.inf]), [-math.inf] * 3)
        assert scale.to_unit(math.inf) == math.inf

    @pytest.mark.parametrize(
        "range_min, range_max, zero_point",
        [(0.0, 100.0, None), (1.0, 1000.0, 0.0), (5.0, 6.0, -100.0), (-50.0, -2.0, 3.0), (1.6e9, 1.7e9, 1.0e9)],
    )
    def test_matches_metaculus_formula(self, range_min, range_max, zero_point):
        scale = Scale(range_min, range_max, zero_point=zero_point)
        x = np.linspace(range_min, range_max, 13)
        np.testing.assert_allclose(scale.to_unit(x), metaculus_unscaled(x, range_min, range_max, zero_point), atol=1e-9)

    @settings(max_examples=60)
    @given(
        st.floats(-1e6, 1e6),
        st.floats(1e-3, 1e6),
        st.one_of(st.none(), st.floats(1e-3, 1e6)),
        st.booleans(),
        st.floats(-0.5, 1.5),
    )
    def test_round_trip(self, range_min, width, gap, zero_above, u):
        range_max = range_min + width
        zero_point = None if gap is None else (range_max + gap if zero_above else range_min - gap)
        scale = Scale(range_min, range_max, zero_point=zero_point)
        x = scale.from_unit(u)
        # floats near x are about 2e-16 |x| apart, so the position is known to that over dx/du
        if zero_point is None:
            slope = width
        else:
            slope = abs(x - zero_point) * abs(math.log((range_max - zero_point) / (range_min - zero_point)))
        precision = 1e-9 + 1e-14 * (abs(x) + abs(range_min) + abs(zero_point or 0.0)) / slope
        assert scale.to_unit(x) == pytest.approx(u, abs=precision)
        inside = range_min + width * (u % 1.0)
        assert scale.from_unit(scale.to_unit(inside)) == pytest.approx(inside, rel=1e-9, abs=1e-9 * width)

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"range_min": 1.0, "range_max": 1.0}, "range_min (1.0) must be below range_max (1.0)"),
            ({"range_min": 2.0, "range_max": 1.0}, "range_min (2.0) must be below range_max (1.0)"),
            ({"range_min": math.nan, "range_max": 1.0}, "range_min and range_max must be finite numbers"),
            ({"range_min": 0.0, "range_max": math.inf}, "range_min and range_max must be finite numbers"),
            ({"range_min": 0.0, "range_max": 10.0, "zero_point": 5.0}, "zero_point (5.0) must lie outside the range"),
            ({"range_min": 0.0, "range_max": 10.0, "zero_point": 0.0}, "zero_point (0.0) must lie outside the range"),
            ({"range_min": 0.0, "range_max": 10.0, "zero_point": 10.0}, "zero_point (10.0) must lie outside the range"),
            ({"range_min": 0.0, "range_max": 10.0, "zero_point": math.nan}, "zero_point must be a finite number"),
            ({"range_min": 0.0, "range_max": 10.0, "zero_point": -math.inf}, "zero_point must be a finite number"),
        ],
    )
    def test_rejects_bad_scales(self, kwargs, message):
        with pytest.raises(ValueError) as error:
            Scale(**kwargs)
        assert str(error.value) == message

    def test_zero_point_just_outside_is_fine(self):
        assert Scale(0.0, 10.0, zero_point=-1e-9).zero_point == -1e-9
        assert Scale(0.0, 10.0, zero_point=10.000001).to_unit(0.0) == 0.0

    def test_open_bounds_count(self):
        assert Scale(0, 1).open_bounds == 0
        assert Scale(0, 1, open_lower=True).open_bounds == 1
        assert Scale(0, 1, open_upper=True).open_bounds == 1
        assert OPEN.open_bounds == 2

    def test_grid(self):
        np.testing.assert_allclose(Scale(0.0, 200.0).grid(), np.arange(201.0))
        log_grid = Scale(1.0, 100.0, zero_point=0.0).grid()
        assert len(log_grid) == 201
        assert (log_grid[0], log_grid[-1]) == (1.0, 100.0)
        assert log_grid[100] == pytest.approx(10.0)
        np.testing.assert_allclose(log_grid[1:] / log_grid[:-1], 100 ** (1 / 200))


class TestOutcomePosition:
    def test_numbers_and_numeric_strings(self):
        assert CLOSED.outcome_position(25) == 0.25
        assert CLOSED.outcome_position("75.0") == 0.75
        assert CLOSED.outcome_position(0.0) == 0.0
        assert CLOSED.outcome_position(100.0) == 1.0
        assert OPEN.outcome_position(-10.0) == pytest.approx(-0.1)
        assert OPEN.outcome_position(150.0) == pytest.approx(1.5)

    def test_dates_as_epoch_seconds(self):
        scale = Scale(1_700_000_000.0, 1_800_000_000.0)
        assert scale.outcome_position(1_725_000_000.0) == pytest.approx(0.25)

    def test_out_of_range_strings(self):
        assert OPEN.outcome_position("below_lower_bound") == -math.inf
        assert OPEN.outcome_position("above_upper_bound") == math.inf

    @pytest.mark.parametrize("value", ["below_lower_bound", -0.001, "-5"])
    def test_below_a_closed_lower_bound(self, value):
        with pytest.raises(ValueError, match="below the range"):
            Scale(0.0, 100.0, open_upper=True).outcome_position(value)

    @pytest.mark.parametrize("value", ["above_upper_bound", 100.001, "1e3"])
    def test_above_a_closed_upper_bound(self, value):
        with pytest.raises(ValueError, match="above the range"):
            Scale(0.0, 100.0, open_lower=True).outcome_position(value)

    @pytest.mark.parametrize(
        "value, message",
        [
            ("yes", "unknown outcome 'yes'"),
            ("", "unknown outcome ''"),
            ("annulled", "unknown outcome 'annulled'"),
            (math.nan, "an outcome must be a finite number, got nan"),
            (math.inf, "an outcome must be a finite number, got inf"),
            ("nan", "an outcome must be a finite number, got nan"),
        ],
    )
    def test_rejects_unknown_outcomes(self, value, message):
        with pytest.raises(ValueError) as error:
            OPEN.outcome_position(value)
        assert str(error.value) == message

    def test_messages_name_the_outcome(self):
        with pytest.raises(ValueError) as error:
            CLOSED.outcome_position(-5.0)
        assert str(error.value) == "outcome -5.0 is below the range and the lower bound is closed"
        with pytest.raises(ValueError) as error:
            CLOSED.outcome_position("above_upper_bound")
        assert str(error.value) == "outcome 'above_upper_bound' is above the range and the upper bound is closed"


class TestValidate:
    def test_accepts_valid_forecasts_and_rounds_like_metaculus(self):
        result = grid.validate_cdf(UNIFORM.tolist(), CLOSED)
        assert result.dtype == float and result.shape == (201,)
        np.testing.assert_allclose(result, UNIFORM)
        noisy = UNIFORM.copy()
        noisy[0], noisy[-1] = 4e-11, 1 - 4e-11
        assert grid.validate_cdf(noisy, CLOSED)[0] == 0.0
        assert grid.validate_cdf(noisy, CLOSED)[-1] == 1.0
        np.testing.assert_array_equal(grid.validate_cdf(UNIFORM + 1.23e-11, CLOSED)[1:-1], np.round(UNIFORM, 10)[1:-1])

    @pytest.mark.parametrize("cdf", [UNIFORM[:200], np.append(UNIFORM, 1.0), np.vstack([UNIFORM, UNIFORM]), 0.5])
    def test_wrong_length(self, cdf):
        with pytest.raises(CdfError, match="201 values"):
            grid.validate_cdf(cdf, CLOSED)

    @pytest.mark.parametrize("index, value", [(200, 1.001), (0, -0.001)])
    def test_outside_zero_one(self, index, value):
        cdf = UNIFORM.copy()
        cdf[index] = value
        with pytest.raises(CdfError, match="between 0 and 1"):
            grid.validate_cdf(cdf, CLOSED)

    def test_decreasing(self):
        cdf = UNIFORM.copy()
        cdf[50] = cdf[49]  # a flat step first: not a decrease
        cdf[100] = cdf[99] - 0.01
        with pytest.raises(CdfError, match=r"non-decreasing \(it decreases after grid point 99\)"):
            grid.validate_cdf(cdf, CLOSED)

    @pytest.mark.parametrize(
        "cdf, scale, message",
        [
            (["a"] * 201, CLOSED, "the CDF must be a list of numbers"),
            (UNIFORM[:7], CLOSED, "the CDF must have 201 values, got 7"),
            (np.full(201, math.nan), CLOSED, "the CDF's values must be finite numbers"),
            (np.append(UNIFORM[:200], math.inf), CLOSED, "the CDF's values must be finite numbers"),
            (UNIFORM * 2, CLOSED, "the CDF's values must lie between 0 and 1"),
            (
                open_tails(0.01, 0.0),
                CLOSED,
                "the lower bound is closed: the CDF must start at 0 (no probability below the range)",
            ),
            (
                open_tails(0.0, 0.01),
                CLOSED,
                "the upper bound is closed: the CDF must end at 1 (no probability above the range)",
            ),
            (
                UNIFORM,
                OPEN,
                "the lower bound is open: at least 0.1% of the probability must fall below the range",
            ),
            (
                open_tails(0.01, 0.0),
                OPEN,
                "the upper bound is open: at least 0.1% of the probability must fall above the range",
            ),
            (0.5 + 0.005 * (UNIFORM - 0.5), OPEN, "at least 1% of the probability must fall inside the range"),
            (
                np.concatenate([[0.0], np.linspace(0.00001, 1.0, 200)]),
                CLOSED,
                "the CDF must rise by at least 0.00005 at every step of the range"
                " (no part of the range may get less than 1% of a uniform forecast's probability)",
            ),
            (
                np.concatenate([np.linspace(0, 0.3, 101), np.linspace(0.7, 1.0, 100)]),
                CLOSED,
                "the CDF must rise by at most 0.2 at any step (no 1/200 of the range may hold more than 20% of the"
                " probability)",
            ),
        ],
    )
    def test_messages(self, cdf, scale, message):
        with pytest.raises(CdfError) as error:
            grid.validate_cdf(cdf, scale)
        assert str(error.value) == message

    def test_decrease_of_exactly_the_tolerance_is_not_a_decrease(self):
        cdf = UNIFORM.copy()
        cdf[0], cdf[1] = 1e-9, 0.0  # a step of exactly -1e-9
        with pytest.raises(CdfError, match="lower bound is closed"):
            grid.validate_cdf(cdf, CLOSED)

    def test_tiny_decrease_is_a_step_problem_not_a_decrease(self):
        cdf = UNIFORM.copy()
        cdf[100] = cdf[99] - 5e-10
        with pytest.raises(CdfError, match=r"at least 0\.00005"):
            grid.validate_cdf(cdf, CLOSED)

    def test_closed_bounds_need_zero_and_one(self):
        with pytest.raises(CdfError, match="lower bound is closed"):
            grid.validate_cdf(open_tails(0.001, 0.0), Scale(0.0, 1.0, open_upper=True))
        with pytest.raises(CdfError, match="upper bound is closed"):
            grid.validate_cdf(open_tails(0.0, 0.001), Scale(0.0, 1.0, open_lower=True))

    def test_open_lower_bound_needs_a_tenth_of_a_percent(self):
        grid.validate_cdf(open_tails(0.001, 0.001), OPEN)  # exactly the minimum is fine
        with pytest.raises(CdfError, match="below the range"):
            grid.validate_cdf(open_tails(0.0009, 0.001), OPEN)
        with pytest.raises(CdfError, match="below the range"):
            grid.validate_cdf(UNIFORM, Scale(0.0, 1.0, open_lower=True))

    def test_open_upper_bound_needs_a_tenth_of_a_percent(self):
        with pytest.raises(CdfError, match="above the range"):
            grid.validate_cdf(open_tails(0.001, 0.0009), OPEN)
        with pytest.raises(CdfError, match="above the range"):
            grid.validate_cdf(UNIFORM, Scale(0.0, 1.0, open_upper=True))

    def test_at_least_one_percent_inside(self):
        grid.validate_cdf(0.5 + 0.01 * (UNIFORM - 0.5), OPEN)  # exactly 1%: every step 0.00005
        grid.validate_cdf(np.round(0.5 + 0.01 * (UNIFORM - 0.5), 5), OPEN)
        grid.validate_cdf(0.5 + 0.0099999996 * (UNIFORM - 0.5), OPEN)  # 1% once rounded to 9 decimals
        with pytest.raises(CdfError, match="at least 1% of the probability must fall inside"):
            grid.validate_cdf(0.5 + 0.0099 * (UNIFORM - 0.5), OPEN)

    def test_minimum_step(self):
        cdf = UNIFORM.copy()
        cdf[1] = 0.00005
        grid.validate_cdf(cdf, CLOSED)
        cdf[1] = 0.0000499996  # Metaculus rounds steps to 9 decimals: 0.00005
        grid.validate_cdf(cdf, CLOSED)
        cdf[1] = 0.000049
        with pytest.raises(CdfError, match=r"at least 0\.00005"):
            grid.validate_cdf(cdf, CLOSED)

    def test_maximum_step(self):
        spike = np.concatenate([np.linspace(0, 0.4, 101), np.linspace(0.6, 1.0, 100)])
        assert np.diff(spike).max() == pytest.approx(0.2)
        grid.validate_cdf(spike, CLOSED)
        spike = np.concatenate([np.linspace(0, 0.4, 101), np.linspace(0.6001, 1.0, 100)])
        with pytest.raises(CdfError, match=r"at most 0\.2"):
            grid.validate_cdf(spike, CLOSED)

    def test_cdf_matrix(self):
        assert grid.as_cdf_matrix(UNIFORM).shape == (1, 201)
        assert grid.as_cdf_matrix([[Decimal(0)] * 201]).dtype == float
        assert grid.as_cdf_matrix(np.zeros((0, 201))).shape == (0, 201)
        for bad, message in [
            (np.zeros((2, 200)), "CDFs must be an (n forecasters, 201) array"),
            (np.zeros((2, 2, 201)), "CDFs must be an (n forecasters, 201) array"),
            (np.full(201, math.inf), "CDF values must be finite numbers"),
        ]:
            with pytest.raises(ValueError) as error:
                grid.as_cdf_matrix(bad)
            assert str(error.value) == message

    def test_cdf_error_is_a_value_error(self):
        assert issubclass(CdfError, ValueError)


class TestPmfBucketsQuantiles:
    def test_pmf_by_hand(self):
        cdf = open_tails(0.1, 0.2)
        p = grid.pmf(cdf)
        assert p.shape == (202,)
        assert p[0] == pytest.approx(0.1)
        assert p[201] == pytest.approx(0.2)
        np.testing.assert_allclose(p[1:201], 0.7 / 200)
        assert p.sum() == pytest.approx(1.0)
        assert grid.pmf(np.vstack([cdf, UNIFORM])).shape == (2, 202)
        np.testing.assert_allclose(grid.pmf(np.vstack([cdf, UNIFORM]))[1], [0.0] + [0.005] * 200 + [0.0])

    @pytest.mark.parametrize(
        "position, bucket",
        [
            (-math.inf, 0),
            (-1e-12, 0),
            (0.0, 1),
            (0.001, 1),
            (0.005, 1),
            (0.00501, 2),
            (0.5, 100),
            (0.5 + 1e-9, 101),
            (0.999, 200),
            (1.0, 200),
            (1.0 + 1e-12, 201),
            (1.5, 201),
            (2.5, 201),
            (math.inf, 201),
        ],
    )
    def test_outcome_bucket(self, position, bucket):
        assert grid.outcome_bucket(position) == bucket

    def test_every_grid_edge_closes_its_bucket(self):
        assert [grid.outcome_bucket(k / 200) for k in range(1, 201)] == list(range(1, 201))

    def test_outcome_bucket_rejects_nan(self):
        with pytest.raises(ValueError) as error:
            grid.outcome_bucket(math.nan)
        assert str(error.value) == "an outcome position must be a number"

    def test_quantile_of_uniform(self):
        levels = [0.0, 0.003, 0.1, 0.1234, 0.55, 0.9999, 1.0]
        np.testing.assert_allclose(grid.quantile(UNIFORM, levels), levels, atol=1e-12)
        assert type(grid.quantile(UNIFORM, 0.3)) is float
        assert grid.quantile(UNIFORM, [0.3]).shape == (1,)
        assert grid.quantile(UNIFORM.tolist(), Decimal("0.25")) == pytest.approx(0.25)

    def test_quantile_with_tails(self):
        cdf = open_tails(0.1, 0.1)  # 0.1 + 0.8 u
        result = grid.quantile(cdf, [0.05, 0.1, 0.3, 0.5, 0.9, 0.95, 0.1001, 0.3456])
        np.testing.assert_allclose(result, [-math.inf, 0.0, 0.25, 0.5, 1.0, math.inf, 0.000125, 0.307])

    def test_quantile_on_flat_stretches(self):
        cdf = np.concatenate([np.full(50, 0.2), np.linspace(0.2, 0.6, 101)[1:], np.full(51, 0.6)])
        assert len(cdf) == 201
        assert grid.quantile(cdf, 0.2) == 0.0
        assert grid.quantile(cdf, 0.6) == pytest.approx(149 / 200)  # the leftmost point at the level
        assert grid.quantile(cdf, 0.61) == math.inf
        assert grid.quantile(cdf, 0.4) == pytest.approx(99 / 200)

    def test_quantile_interpolates_inside_a_bucket(self):
        cdf = np.concatenate([np.zeros(100), np.linspace(0.0, 1.0, 101)])  # flat up to grid point 100
        # the step from point 100 to 101 is 0.01: q = 0.005 lies half-way
        assert grid.quantile(cdf, 0.005) == pytest.approx(100.5 / 200)
        assert grid.quantile(cdf, 0.0) == 0.0  # the leftmost point of a flat start

    def test_quantile_rejects_levels_outside_zero_one(self):
        for level in (-0.1, 1.1, math.nan, [0.5, 2.0]):
            with pytest.raises(ValueError) as error:
                grid.quantile(UNIFORM, level)
            assert str(error.value) == "quantile levels must lie between 0 and 1"

    def test_quantile_of_a_flat_cdf(self):
        assert grid.quantile(np.full(201, 0.5), 0.5) == 0.0
        np.testing.assert_array_equal(grid.quantile(np.full(201, 0.5), [0.2, 0.7]), [-math.inf, math.inf])

    def test_quantile_of_decimals(self):
        cdf = [Decimal(k) / 200 for k in range(201)]
        assert grid.quantile(cdf, 0.4321) == pytest.approx(0.4321)

    def test_integer_and_decimal_inputs(self):
        step = [0] * 100 + [1] * 101
        assert grid.pmf(step).dtype == float
        np.testing.assert_array_equal(grid.pmf(step)[[0, 100, 101, 201]], [0, 1, 0, 0])
        assert grid.density(step).dtype == float
        assert grid.density([Decimal(0)] * 100 + [Decimal(1)] * 101)[99] == 200.0
        assert grid.pmf([Decimal(0)] * 100 + [Decimal(1)] * 101)[100] == 1.0

    def test_density(self):
        np.testing.assert_allclose(grid.density(UNIFORM), np.ones(200))
        np.testing.assert_allclose(grid.density(open_tails(0.1, 0.1)), np.full(200, 0.8))
        assert grid.density(np.vstack([UNIFORM, UNIFORM])).shape == (2, 200)
