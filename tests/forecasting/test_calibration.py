"""forecasting/calibration.py: reliability bins, Wilson intervals and the diagram's geometry (pure)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting import calibration
from forecasting.calibration import bin_index, expected_calibration_error, reliability_bins, wilson_interval

# --- bins ---------------------------------------------------------------------------------------


def test_no_forecasts_gives_every_bin_empty():
    table = reliability_bins([], [])
    assert len(table) == 10
    assert all(b.count == 0 and b.happened == 0 for b in table)
    assert all(b.mean_forecast is None and b.observed_frequency is None for b in table)
    assert all(b.interval_low is None and b.interval_high is None for b in table)
    assert [(b.low, b.high) for b in table][:2] == [(0.0, 0.1), (0.1, 0.2)]
    assert expected_calibration_error(table) is None
    assert calibration.reliability_plot(table) is None


def test_all_forecasts_in_one_bin():
    table = reliability_bins([0.72, 0.78, 0.75, 0.71], [1, 1, 0, 1])
    counts = [b.count for b in table]
    assert counts == [0, 0, 0, 0, 0, 0, 0, 4, 0, 0]
    seventy = table[7]
    assert seventy.happened == 3
    assert seventy.mean_forecast == pytest.approx(0.74)
    assert seventy.observed_frequency == pytest.approx(0.75)
    assert expected_calibration_error(table) == pytest.approx(0.01)


def test_certain_forecasts_go_to_the_end_bins():
    table = reliability_bins([0.0, 1.0, 1.0], [0, 1, 0])
    assert table[0].count == 1 and table[0].observed_frequency == 0.0
    assert table[9].count == 2 and table[9].mean_forecast == 1.0 and table[9].observed_frequency == 0.5


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0, 0), (0.0999, 0), (0.1, 1), (0.3, 3), (0.7, 7), (0.5, 5), (0.6, 6), (0.9, 9), (0.95, 9), (1.0, 9)],
)
def test_an_inner_edge_belongs_to_the_bin_above(p, expected):
    # 0.3 * 10 and 0.7 * 10 are not exact in floating point: the edge must still be the upper bin's.
    assert bin_index(p, 10) == expected


def test_bin_count_is_a_parameter():
    table = reliability_bins([0.2, 0.5, 0.8], [0, 1, 1], bins=2)
    assert [(b.low, b.high, b.count) for b in table] == [(0.0, 0.5, 1), (0.5, 1.0, 2)]
    assert reliability_bins([0.4], [1], bins=1)[0].count == 1


def test_observed_frequency_and_mean_per_bin():
    table = reliability_bins([0.15, 0.12, 0.18, 0.85, 0.88], [0, 0, 1, 1, 1])
    assert table[1].count == 3 and table[1].happened == 1
    assert table[1].observed_frequency == pytest.approx(1 / 3)
    assert table[1].mean_forecast == pytest.approx(0.15)
    assert table[8].observed_frequency == 1.0 and table[8].mean_forecast == pytest.approx(0.865)
    # ECE weighs each bin by its count: (3 * |0.15 - 1/3| + 2 * |0.865 - 1|) / 5
    assert expected_calibration_error(table) == pytest.approx((3 * (1 / 3 - 0.15) + 2 * 0.135) / 5)


@pytest.mark.parametrize(
    ("probabilities", "outcomes", "message"),
    [
        ([0.5], [], "1 probabilities but 0 outcomes"),
        ([1.5], [1], "in \\[0, 1\\]"),
        ([-0.01], [0], "in \\[0, 1\\]"),
        ([math.nan], [0], "finite"),
        ([math.inf], [1], "finite"),
        (["0.5"], [1], "finite"),
        ([0.5], [2], "0 or 1"),
        ([0.5], [-1], "0 or 1"),
    ],
)
def test_bad_input_is_refused_clearly(probabilities, outcomes, message):
    with pytest.raises(ValueError, match=message):
        reliability_bins(probabilities, outcomes)


def test_zero_bins_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        reliability_bins([0.5], [1], bins=0)


@given(
    st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=1)), max_size=60),
    st.integers(min_value=1, max_value=20),
)
def test_bins_partition_the_forecasts(pairs, bins):
    probabilities = [p for p, _ in pairs]
    outcomes = [o for _, o in pairs]
    table = reliability_bins(probabilities, outcomes, bins=bins)
    assert len(table) == bins
    assert sum(b.count for b in table) == len(pairs)
    assert sum(b.happened for b in table) == sum(outcomes)
    for b in table:
        if b.count:
            # The mean forecast of a bin lies inside the bin (allowing the edge rounding).
            assert b.low - 1e-9 <= b.mean_forecast <= b.high + 1e-9
            assert 0 <= b.observed_frequency <= 1
            assert b.interval_low <= b.observed_frequency <= b.interval_high
    ece = expected_calibration_error(table)
    assert ece is None if not pairs else 0 <= ece <= 1


# --- Wilson interval ----------------------------------------------------------------------------


def test_wilson_interval_known_value():
    # 8 of 10 at 95%: the textbook Wilson interval is (0.4902, 0.9433).
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_at_the_extremes_stays_in_the_unit_interval():
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0 < high < 0.5
    low, high = wilson_interval(5, 5)
    assert high == 1.0 and 0.5 < low < 1
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_narrows_with_more_data_and_with_a_smaller_z():
    small = wilson_interval(5, 10)
    large = wilson_interval(500, 1000)
    assert large[1] - large[0] < small[1] - small[0]
    assert small[0] < 0.5 < small[1]
    narrow = wilson_interval(5, 10, z=1.0)
    assert narrow[1] - narrow[0] < small[1] - small[0]


@pytest.mark.parametrize(("successes", "n"), [(-1, 3), (4, 3), (0, -1)])
def test_wilson_interval_refuses_impossible_counts(successes, n):
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, n)


# --- plot geometry ------------------------------------------------------------------------------


def test_plot_puts_points_at_mean_forecast_and_observed_frequency():
    table = reliability_bins([0.25, 0.25, 0.75, 0.75, 0.75, 0.75], [0, 1, 1, 1, 1, 0])
    plot = calibration.reliability_plot(table, size=200, count_height=40)
    assert [(p.x, p.y) for p in plot.points] == [(50.0, 100.0), (150.0, 50.0)]
    low_bin, high_bin = plot.points
    assert high_bin.radius > low_bin.radius  # more forecasts, bigger point
    assert high_bin.radius == 6.0  # the largest bin: 2 + 4
    assert high_bin.y_high < high_bin.y < high_bin.y_low  # the interval spans the point (y grows down)
    # One bar per bin; the largest is full height and sits on the bottom of the strip.
    assert len(plot.bars) == 10
    assert plot.bars[7].height == 40.0 and plot.bars[7].y == 200.0
    assert plot.bars[2].height == 20.0 and plot.bars[2].y == 220.0
    assert plot.bars[0].height == 0.0 and plot.bars[0].x == 0.0
    assert plot.bars[9].x == 180.0 and plot.bars[9].width == 19.0
    assert plot.ticks[0] == (0.0, 200.0, 0) and plot.ticks[-1] == (200.0, 0.0, 100)
