import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting import aggregation


def test_median_of_odd_and_even_counts():
    assert aggregation.median([0.2, 0.9, 0.4]) == pytest.approx(0.4)
    assert aggregation.median([0.2, 0.4]) == pytest.approx(0.3)


def test_median_of_nobody_is_none():
    assert aggregation.median([]) is None
    assert aggregation.categorical_median([]) is None


def test_categorical_median_is_renormalised():
    result = aggregation.categorical_median([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.4, 0.5, 0.1]])
    # per-option medians 0.4, 0.3, 0.1 -> divided by 0.8
    np.testing.assert_allclose(result, [0.5, 0.375, 0.125])
    assert result.sum() == pytest.approx(1.0)


@given(st.lists(st.floats(min_value=0.01, max_value=0.99), min_size=1, max_size=50), st.randoms())
def test_median_ignores_forecaster_order(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert aggregation.median(values) == aggregation.median(shuffled)
    assert min(values) <= aggregation.median(values) <= max(values)
