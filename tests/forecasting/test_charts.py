"""The charts' pure helpers: the step line, downsampling of long histories, the histogram."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting.charts import downsample_indices, histogram, step_chart

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
