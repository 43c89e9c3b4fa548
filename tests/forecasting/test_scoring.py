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


class TestBaselineAndPeer:
    def test_baseline_hand_computed(self):
        np.testing.assert_allclose(scoring.baseline_score([0.5, 0.8, 0.25], 1), [0.0, 100 * (math.log2(0.8) + 1), -100])
        # three options, uniform forecast scores 0, certainty 100
        np.testing.assert_allclose(
            scoring.baseline_score([[1 / 3, 1 / 3, 1 / 3], [0.998, 0.001, 0.001]], 0), [0.0, 99.8], atol=0.05
        )

    def test_peer_hand_computed(self):
        np.testing.assert_allclose(
            scoring.peer_score([0.8, 0.4, 0.5], 1),
            [
                100 * (math.log(0.8) - (math.log(0.4) + math.log(0.5)) / 2),
                100 * (math.log(0.4) - (math.log(0.8) + math.log(0.5)) / 2),
                100 * (math.log(0.5) - (math.log(0.8) + math.log(0.4)) / 2),
            ],
        )

    def test_lone_forecaster_has_zero_peer_score(self):
        np.testing.assert_allclose(scoring.peer_score([0.9], 1), [0.0])

    @given(st.lists(probabilities, min_size=2, max_size=30), st.sampled_from([0, 1]), st.randoms())
    def test_peer_scores_sum_to_zero_and_follow_their_forecaster(self, values, outcome, rng):
        scores = scoring.peer_score(values, outcome)
        assert scores.sum() == pytest.approx(0.0, abs=1e-6)
        order = list(range(len(values)))
        rng.shuffle(order)
        shuffled = scoring.peer_score([values[i] for i in order], outcome)
        np.testing.assert_allclose(shuffled, scores[order], atol=1e-9)

    @given(truth=probabilities, forecast=probabilities)
    def test_baseline_is_proper(self, truth, forecast):
        def expected(p):
            return truth * scoring.baseline_score([p], 1)[0] + (1 - truth) * scoring.baseline_score([p], 0)[0]

        assert expected(truth) >= expected(forecast) - 1e-9

    @given(p=probabilities, outcome=st.sampled_from([0, 1]))
    def test_baseline_is_at_most_100(self, p, outcome):
        assert scoring.baseline_score([p], outcome)[0] <= 100


class TestTimeAveraged:
    def test_hand_computed_two_forecasters(self):
        # Period 0..20. f0: 0.5 from 0, 0.9 from 10. f1: 0.8 from 5. Outcome YES.
        result = scoring.time_averaged_scores(
            [0, 1, 0], [0, 5, 10], [[0.5, 0.5], [0.2, 0.8], [0.1, 0.9]], 1, opens_at=0, closes_at=20
        )
        np.testing.assert_allclose(result["coverage"], [1.0, 0.75])
        np.testing.assert_allclose(result["brier"], [(0.25 * 10 + 0.01 * 10) / 20, 0.04])
        b = lambda p: 100 * (math.log2(p) + 1)  # noqa: E731
        np.testing.assert_allclose(result["baseline"], [(b(0.5) * 10 + b(0.9) * 10) / 20, b(0.8) * 15 / 20])
        # peer: 0..5 f0 alone; 5..10 f0 .5 vs f1 .8; 10..20 f0 .9 vs f1 .8
        f0 = (100 * math.log(0.5 / 0.8) * 5 + 100 * math.log(0.9 / 0.8) * 10) / 20
        np.testing.assert_allclose(result["peer"], [f0, -f0])

    def test_forecasts_before_opening_stand_from_opening(self):
        result = scoring.time_averaged_scores([0], [-100], [[0.3, 0.7]], 1, opens_at=0, closes_at=10)
        assert result["coverage"][0] == pytest.approx(1.0)

    @given(
        st.lists(st.tuples(st.integers(0, 4), st.integers(0, 99), probabilities), min_size=1, max_size=25),
        st.sampled_from([0, 1]),
        st.randoms(),
    )
    def test_invariant_to_forecaster_labels(self, forecasts, outcome, rng):
        who = [f for f, _, _ in forecasts]
        when = [float(t) for _, t, _ in forecasts]
        p = [[1 - q, q] for _, _, q in forecasts]
        base = scoring.time_averaged_scores(who, when, p, outcome, opens_at=0, closes_at=100, n_forecasters=5)
        relabel = list(range(5))
        rng.shuffle(relabel)
        moved = scoring.time_averaged_scores(
            [relabel[f] for f in who], when, p, outcome, opens_at=0, closes_at=100, n_forecasters=5
        )
        for name in ("baseline", "peer", "coverage"):
            np.testing.assert_allclose(moved[name][relabel], base[name], atol=1e-9)
        # peer scores of the forecasters still sum to zero over the period
        assert base["peer"].sum() == pytest.approx(0.0, abs=1e-6)


class TestEarlyResolution:
    def test_hand_computed_ten_day_question_resolved_on_day_five(self):
        # The example: A at 80% and B at 50% from day 0, YES on day 5 of 10. Each moment
        # weighs 1/10 whatever happens; after the early end baseline and peer count 0 and
        # Brier and log count the uniform forecast (0.25 and ln 0.5).
        result = scoring.time_averaged_scores(
            [0, 1], [0, 0], [[0.2, 0.8], [0.5, 0.5]], 1, opens_at=0, closes_at=10, ended_at=5
        )
        a_baseline = 5 * 100 * (math.log2(0.8) + 1) / 10
        assert a_baseline == pytest.approx(33.90, abs=0.005)
        np.testing.assert_allclose(result["baseline"], [a_baseline, 0.0], atol=1e-9)
        a_peer = 5 * 100 * math.log(0.8 / 0.5) / 10
        np.testing.assert_allclose(result["peer"], [a_peer, -a_peer], atol=1e-9)
        np.testing.assert_allclose(result["coverage"], [0.5, 0.5])
        np.testing.assert_allclose(result["brier"], [(5 * 0.04 + 5 * 0.25) / 10, 0.25])
        np.testing.assert_allclose(result["log"], [(5 * math.log(0.8) + 5 * math.log(0.5)) / 10, math.log(0.5)])

    def test_late_forecaster_brier_runs_from_their_first_forecast(self):
        # first forecast on day 4, question ends early on day 6 of 10: 2 days at 0.9, 4 days uniform
        result = scoring.time_averaged_scores([0], [4], [[0.1, 0.9]], 1, opens_at=0, closes_at=10, ended_at=6)
        assert result["brier"][0] == pytest.approx((2 * 0.01 + 4 * 0.25) / 6)
        assert result["coverage"][0] == pytest.approx(0.2)

    def test_forecasts_after_the_end_never_stand(self):
        result = scoring.time_averaged_scores(
            [0, 1], [0, 7], [[0.5, 0.5], [0.1, 0.9]], 1, opens_at=0, closes_at=10, ended_at=5
        )
        assert result["coverage"][1] == 0
        assert math.isnan(result["brier"][1])
        assert result["peer"][0] == pytest.approx(0.0)

    def test_multiple_choice_uniform_fill(self):
        result = scoring.time_averaged_scores([0], [0], [[0.6, 0.3, 0.1]], 0, opens_at=0, closes_at=4, ended_at=1)
        uniform_brier = (2 / 3) ** 2 + 2 * (1 / 3) ** 2
        assert result["brier"][0] == pytest.approx((0.16 + 0.09 + 0.01 + 3 * uniform_brier) / 4)
        assert result["log"][0] == pytest.approx((math.log(0.6) + 3 * math.log(1 / 3)) / 4)


unit = st.floats(min_value=0.05, max_value=1.0)


@st.composite
def early_resolution_worlds(draw):
    """A belief P(YES), grid times 0 = g_0 < ... < g_m = close, and P(resolves at g_j | outcome) per outcome."""
    m = draw(st.integers(2, 5))
    cuts = sorted(draw(st.lists(st.floats(0.05, 0.95), min_size=m - 1, max_size=m - 1, unique=True)))
    grid = [0.0, *cuts, 1.0]
    p_yes = draw(st.floats(0.02, 0.98))
    when = {o: np.array(draw(st.lists(unit, min_size=m, max_size=m))) for o in (0, 1)}
    when = {o: w / w.sum() for o, w in when.items()}  # P(T = g_j | o), j = 1..m
    other = draw(st.lists(st.floats(0.02, 0.98), min_size=m, max_size=m))  # a peer's reports, fixed
    return grid, p_yes, when, other


class TestProperWhenResolutionCanComeEarly:
    @given(early_resolution_worlds(), st.data())
    def test_honest_reporting_maximises_every_expected_time_averaged_score(self, world, data):
        grid, p_yes, when, other = world
        m = len(grid) - 1
        # Honest report at g_j, knowing the question is still open: P(YES | T > g_j).
        still_open = {o: np.array([when[o][j:].sum() for j in range(m)]) for o in (0, 1)}
        honest = p_yes * still_open[1] / (p_yes * still_open[1] + (1 - p_yes) * still_open[0])

        def expected(reports):
            total = dict.fromkeys(("brier", "log", "baseline", "peer"), 0.0)
            for outcome, p_outcome in ((1, p_yes), (0, 1 - p_yes)):
                for j in range(1, m + 1):  # resolves at g_j: the reports made before it count
                    made = grid[:j]
                    who = [0] * j + [1] * j
                    probs = [[1 - r, r] for r in reports[:j]] + [[1 - q, q] for q in other[:j]]
                    result = scoring.time_averaged_scores(
                        who, made + made, probs, outcome, opens_at=0.0, closes_at=1.0, ended_at=grid[j]
                    )
                    for name in total:
                        total[name] += p_outcome * when[outcome][j - 1] * result[name][0]
            return total

        deviated = list(honest)
        j = data.draw(st.integers(0, m - 1))
        deviated[j] = data.draw(st.floats(0.01, 0.99))
        truth, lie = expected(list(honest)), expected(deviated)
        assert truth["baseline"] >= lie["baseline"] - 1e-9
        assert truth["peer"] >= lie["peer"] - 1e-9
        assert truth["log"] >= lie["log"] - 1e-9
        assert truth["brier"] <= lie["brier"] + 1e-9


class TestCalibration:
    def test_table_and_ece_hand_computed(self):
        # 0.15 x4 (1 happened) and 0.85 x4 (3 happened): each bin off by 0.1 -> ECE 0.1
        p = [0.15] * 4 + [0.85] * 4
        o = [1, 0, 0, 0, 1, 1, 1, 0]
        table = scoring.calibration_table(p, o)
        assert len(table) == 10
        assert table[1]["count"] == 4 and table[1]["observed_frequency"] == pytest.approx(0.25)
        assert table[8]["mean_forecast"] == pytest.approx(0.85)
        assert scoring.expected_calibration_error(p, o) == pytest.approx(0.1)

    def test_probability_one_lands_in_the_top_bin(self):
        assert scoring.calibration_table([1.0], [1])[9]["count"] == 1

    def test_perfectly_calibrated_forecasts_have_zero_error(self):
        assert scoring.expected_calibration_error([0.5, 0.5], [0, 1]) == pytest.approx(0.0)
