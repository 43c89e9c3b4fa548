import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting import scoring

probabilities = st.floats(min_value=0.01, max_value=0.99, allow_nan=False)


class TestBinary:
    def test_brier_hand_computed(self):
        assert scoring.binary_brier(0.7, 1) == pytest.approx(0.09)
        assert scoring.binary_brier(0.7, 0) == pytest.approx(0.49)
        assert scoring.binary_brier(0.5, 1) == pytest.approx(0.25)

    def test_log_hand_computed(self):
        assert scoring.binary_log(0.8, 1) == pytest.approx(math.log(0.8))
        assert scoring.binary_log(0.8, 0) == pytest.approx(math.log(0.2))

    def test_log_of_certain_wrong_forecast_is_finite(self):
        assert scoring.binary_log(1.0, 0) == pytest.approx(math.log(scoring.LOG_SCORE_FLOOR))

    def test_vectorised_over_forecasters(self):
        np.testing.assert_allclose(scoring.binary_brier([0.1, 0.6], 1), [0.81, 0.16])

    @pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf")])
    def test_rejects_invalid_probabilities(self, bad):
        with pytest.raises(ValueError):
            scoring.binary_brier(bad, 1)

    def test_rejects_unknown_outcome(self):
        with pytest.raises(ValueError):
            scoring.binary_log(0.5, 2)

    @given(truth=probabilities, forecast=probabilities)
    def test_expected_scores_are_best_at_the_true_probability(self, truth, forecast):
        # Propriety: reporting the true probability maximises the expected score.
        def expected_brier(p):
            return truth * scoring.binary_brier(p, 1) + (1 - truth) * scoring.binary_brier(p, 0)

        def expected_log(p):
            return truth * scoring.binary_log(p, 1) + (1 - truth) * scoring.binary_log(p, 0)

        assert expected_brier(truth) <= expected_brier(forecast) + 1e-12
        assert expected_log(truth) >= expected_log(forecast) - 1e-12

    @given(p=probabilities, outcome=st.sampled_from([0, 1]))
    def test_bounds(self, p, outcome):
        assert 0 <= scoring.binary_brier(p, outcome) <= 1
        assert scoring.binary_log(p, outcome) <= 0


class TestCategorical:
    def test_brier_hand_computed(self):
        # (0.5-1)^2 + 0.3^2 + 0.2^2 = 0.25 + 0.09 + 0.04
        assert scoring.categorical_brier([0.5, 0.3, 0.2], 0) == pytest.approx(0.38)

    def test_log_hand_computed(self):
        assert scoring.categorical_log([0.5, 0.3, 0.2], 2) == pytest.approx(math.log(0.2))

    def test_binary_as_two_options_doubles_brier(self):
        # Documented convention: multiple-choice Brier sums over options.
        assert scoring.categorical_brier([0.3, 0.7], 1) == pytest.approx(2 * scoring.binary_brier(0.7, 1))

    def test_rows_are_forecasters(self):
        np.testing.assert_allclose(scoring.categorical_log([[0.5, 0.5], [0.9, 0.1]], 0), [math.log(0.5), math.log(0.9)])

    def test_rejects_vectors_not_summing_to_one(self):
        with pytest.raises(ValueError, match="sum to 1"):
            scoring.categorical_brier([0.5, 0.3, 0.3], 0)

    def test_rejects_outcome_outside_options(self):
        with pytest.raises(ValueError):
            scoring.categorical_log([0.5, 0.5], 2)

    @given(st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=2, max_size=5), st.data())
    def test_expected_brier_is_best_at_the_truth(self, weights, data):
        truth = np.array(weights) / sum(weights)
        other_weights = data.draw(
            st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=len(weights), max_size=len(weights))
        )
        other = np.array(other_weights) / sum(other_weights)

        def expected(p):
            return sum(truth[k] * scoring.categorical_brier(p, k) for k in range(len(truth)))

        assert expected(truth) <= expected(other) + 1e-9
