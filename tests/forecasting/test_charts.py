"""The charts' pure helpers: the step line, downsampling of long histories, the histogram, and the drawings
of numeric and date questions' distributions (densities, tails, the CDF, the fan of their history)."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting.charts import (
    cdf_chart,
    distribution_chart,
    downsample_indices,
    fan_chart,
    histogram,
    interval_positions,
    step_chart,
    tail_bar,
    tail_masses,
)
from forecasting.continuous import Scale, cdf_from_median_interval

# --- step_chart ---------------------------------------------------------------------------------------


def test_step_chart_needs_two_points():
    assert step_chart([]) is None
    assert step_chart([(0.0, 0.5)]) is None


def test_step_chart_holds_each_value_until_the_next():
    chart = step_chart([(0.0, 0.25), (50.0, 0.75), (100.0, 0.5)], width=200, height=100)
    # 0.25 from x=0 to x=100, then 0.75 to x=200, then 0.5 at the end.
    assert chart["points"] == "0.0,75.0 100.0,75.0 100.0,25.0 200.0,25.0 200.0,50.0"
    assert (chart["width"], chart["height"]) == (200, 100)
    assert chart["first"] == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert chart["last"] == dt.datetime(1970, 1, 1, 0, 1, 40, tzinfo=dt.UTC)


def test_step_chart_of_points_at_one_instant_stays_finite():
    chart = step_chart([(10.0, 0.2), (10.0, 0.8)], width=100, height=10)
    assert chart["points"] == "0.0,8.0 0.0,8.0 0.0,2.0"


# --- downsample_indices -------------------------------------------------------------------------------


def test_short_series_are_kept_whole():
    assert downsample_indices([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4], 4) == [0, 1, 2, 3]
    assert downsample_indices([], [], 8) == []


def test_downsampling_refuses_inconsistent_input():
    with pytest.raises(ValueError, match="differ in length"):
        downsample_indices([0, 1], [0.5], 8)
    with pytest.raises(ValueError, match="at least 4"):
        downsample_indices([0, 1], [0.5, 0.6], 3)


def test_each_bucket_keeps_its_first_lowest_highest_and_last_point():
    # Two buckets over [0, 10]: points 0-4 in the first, 5-9 in the second (max_points 8 -> 2 buckets).
    times = list(range(10))
    values = [0.5, 0.9, 0.1, 0.6, 0.4, 0.3, 0.2, 0.8, 0.7, 0.45]
    kept = downsample_indices(times, values, 8)
    assert kept == [0, 1, 2, 4, 5, 6, 7, 9]


def test_points_at_one_instant_form_one_bucket():
    kept = downsample_indices([5.0] * 10, [0.3, 0.2, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4], 4)
    assert kept == [0, 1, 2, 9]


@given(
    values=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=300),
    max_points=st.integers(4, 64),
    data=st.data(),
)
def test_downsampling_keeps_the_ends_the_extremes_and_the_budget(values, max_points, data):
    gaps = data.draw(st.lists(st.floats(0, 1e5), min_size=len(values), max_size=len(values)))
    times = np.cumsum(gaps).tolist()
    kept = downsample_indices(times, values, max_points)
    assert kept == sorted(set(kept))
    assert len(kept) <= max(max_points, len(values) if len(values) <= max_points else 0)
    assert kept[0] == 0 and kept[-1] == len(values) - 1
    assert max(values[i] for i in kept) == max(values)
    assert min(values[i] for i in kept) == min(values)


# --- histogram ----------------------------------------------------------------------------------------


def test_histogram_counts_each_probability_in_its_bin():
    assert histogram([0.0, 0.04, 0.05, 0.5, 0.99, 1.0], bins=20) == [2, 1] + [0] * 8 + [1] + [0] * 8 + [2]


def test_histogram_edges_belong_to_the_upper_bin():
    assert histogram([0.25, 0.5, 0.75], bins=4) == [0, 1, 1, 1]


def test_histogram_refuses_what_is_not_a_probability():
    with pytest.raises(ValueError, match="not a probability"):
        histogram([1.01])
    with pytest.raises(ValueError, match="not a probability"):
        histogram([-0.01])
    with pytest.raises(ValueError, match="at least 1"):
        histogram([0.5], bins=0)
    assert histogram([], bins=3) == [0, 0, 0]
    assert histogram([0.5], bins=1) == [1]


# --- numeric and date questions: distribution_chart, tail_bar, cdf_chart, fan_chart -------------------------

OPEN_ABOVE = Scale(0.0, 100.0, open_upper=True)
UNIFORM = np.linspace(0.0, 1.0, 201)


def _points(line: str) -> np.ndarray:
    return np.array([[float(v) for v in pair.split(",")] for pair in line.split()])


def test_a_uniform_forecast_is_a_flat_density_just_under_the_top():
    chart = distribution_chart({"community": UNIFORM}, width=200, height=100)
    points = _points(chart["curves"]["community"]["line"])
    assert points[0, 0] == 0 and points[-1, 0] == 200 and len(points) == 202
    assert np.allclose(points[:, 1], 100 - 100 / 1.08, atol=0.01)
    assert chart["curves"]["community"]["area"].startswith("M0,100 L0,") and chart["curves"]["community"][
        "area"
    ].endswith("L200,100 Z")
    assert chart["marker"] is None


def test_densities_share_one_scale_the_tallest_reaching_the_top():
    narrow = cdf_from_median_interval(40, 35, 45, OPEN_ABOVE)
    chart = distribution_chart({"community": UNIFORM, "mine": narrow}, width=100, height=100)
    mine = _points(chart["curves"]["mine"]["line"])
    community = _points(chart["curves"]["community"]["line"])
    assert mine[:, 1].min() == pytest.approx(100 - 100 / 1.08, abs=0.01)  # the narrow peak reaches the top
    assert community[:, 1].min() > mine[:, 1].min()  # the flat one is lower, on the same scale
    peak_x = mine[np.argmin(mine[:, 1]), 0]
    assert peak_x == pytest.approx(40, abs=1)  # at the median (x: the unit range)


def test_a_missing_curve_is_left_out_and_no_curve_is_no_chart():
    assert distribution_chart({"community": None, "mine": None}) is None
    chart = distribution_chart({"community": None, "mine": UNIFORM})
    assert set(chart["curves"]) == {"mine"}


def test_the_tails_and_the_outcome_marker():
    cdf = cdf_from_median_interval(80, 60, 120, OPEN_ABOVE)
    chart = distribution_chart({"community": cdf}, marker=0.42, width=500)
    curve = chart["curves"]["community"]
    assert (curve["below"], curve["above"]) == pytest.approx(tail_masses(cdf))
    assert curve["below"] == 0 and 0.1 < curve["above"] < 0.3  # the 90th percentile (120) is past the end
    assert chart["marker"] == {"side": "inside", "x": "210"}
    assert distribution_chart({"community": cdf}, marker=float("inf"))["marker"] == {"side": "above"}
    assert distribution_chart({"community": cdf}, marker=float("-inf"))["marker"] == {"side": "below"}


def test_a_tail_bar_is_its_mass_of_the_box():
    assert tail_bar(0.25, height=60) == {"y": "45", "height": "15", "mass": 0.25}
    assert tail_bar(1.5, height=60)["height"] == "60" and tail_bar(-1, height=60)["height"] == "0"


def test_the_cdf_chart_runs_from_bottom_left_to_top_right_and_marks_the_percentiles():
    chart = cdf_chart(UNIFORM, width=200, height=100)
    points = _points(chart["points"])
    assert tuple(points[0]) == (0, 100) and tuple(points[-1]) == (200, 0)
    assert (chart["low"], chart["median"], chart["high"]) == ("20", "100", "180")
    beyond = cdf_chart(cdf_from_median_interval(95, 80, 130, OPEN_ABOVE))
    assert beyond["high"] is None  # the 90th percentile is above the range


def test_interval_positions_are_the_10th_50th_and_90th_percentiles():
    cdf = cdf_from_median_interval(40, 25, 60, OPEN_ABOVE)
    assert interval_positions(cdf) == pytest.approx((0.25, 0.40, 0.60), abs=0.01)


def test_the_fan_holds_each_interval_until_the_next_and_clamps_beyond_the_range():
    chart = fan_chart(
        [0.0, 10.0], [(0.2, 0.5, 0.8), (float("-inf"), 0.4, float("inf"))], until=20.0, width=200, height=100
    )
    assert chart["median"] == "0,50 100,50 100,60 200,60"
    upper, lower = chart["band"].split()[:4], chart["band"].split()[4:]
    assert upper == ["0,20", "100,20", "100,0", "200,0"]  # the second 90th percentile is above: the top edge
    assert lower == ["200,100", "100,100", "100,80", "0,80"]  # drawn back, closing the polygon
    assert chart["first"] == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert chart["last"] == dt.datetime(1970, 1, 1, 0, 0, 20, tzinfo=dt.UTC)


def test_a_fan_needs_a_span_of_time():
    assert fan_chart([], []) is None
    assert fan_chart([5.0], [(0.1, 0.5, 0.9)]) is None  # one moment, nothing after it
    assert fan_chart([5.0], [(0.1, 0.5, 0.9)], until=15.0)["median"] == "0,80 560,80"
    with pytest.raises(ValueError):
        fan_chart([0.0, 1.0], [(0.1, 0.5, 0.9)])
