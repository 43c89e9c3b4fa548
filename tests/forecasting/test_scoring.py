import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting import scoring

probabilities = st.floats(min_value=0.01, max_value=0.99, allow_nan=False)

# The documented log-score floor (module docstring, README): probabilities below 0.001 score as 0.001.
# Written out here rather than read from the module, so that a changed floor fails these tests.
LN_FLOOR = math.log(0.001)  # -6.907755...


class TestBinary:
    def test_brier_hand_computed(self):
        assert scoring.binary_brier(0.7, 1) == pytest.approx(0.09)
        assert scoring.binary_brier(0.7, 0) == pytest.approx(0.49)
        assert scoring.binary_brier(0.5, 1) == pytest.approx(0.25)

    def test_log_hand_computed(self):
        assert scoring.binary_log(0.8, 1) == pytest.approx(math.log(0.8))
        assert scoring.binary_log(0.8, 0) == pytest.approx(math.log(0.2))

    def test_log_of_certain_wrong_forecast_is_finite(self):
        assert scoring.binary_log(1.0, 0) == pytest.approx(-6.907755279, abs=1e-9)  # ln 0.001

    def test_log_floor_applies_below_a_tenth_of_a_percent_only(self):
        # below the floor: the floor's score; at twice the floor: its own score (the floor is neither
        # dropped, which would give -inf, nor raised)
        assert scoring.binary_log(0.0, 1) == pytest.approx(LN_FLOOR, abs=1e-12)
        assert scoring.binary_log(0.0004, 1) == pytest.approx(LN_FLOOR, abs=1e-12)
        assert scoring.binary_log(0.9995, 0) == pytest.approx(LN_FLOOR, abs=1e-12)  # 1 - p = 0.0005
        assert scoring.binary_log(0.002, 1) == pytest.approx(math.log(0.002), abs=1e-12)
        np.testing.assert_allclose(scoring.binary_log([0.0, 0.002, 1.0], 1), [LN_FLOOR, math.log(0.002), 0.0])

    def test_certain_forecasts_are_valid_and_score_perfectly_when_right(self):
        assert scoring.binary_brier(0.0, 0) == 0.0 and scoring.binary_brier(1.0, 1) == 0.0
        assert scoring.binary_brier(0.0, 1) == 1.0 and scoring.binary_brier(1.0, 0) == 1.0
        assert scoring.binary_log(1.0, 1) == 0.0 and scoring.binary_log(0.0, 0) == 0.0

    def test_one_probability_gives_a_float_and_many_an_array(self):
        assert type(scoring.binary_brier(0.7, 1)) is float and type(scoring.binary_log(0.7, 1)) is float
        assert scoring.binary_brier([0.7], 1).shape == (1,) and scoring.binary_log([0.7, 0.2], 0).shape == (2,)

    def test_vectorised_over_forecasters(self):
        np.testing.assert_allclose(scoring.binary_brier([0.1, 0.6], 1), [0.81, 0.16])

    def test_decimal_probabilities_score_as_their_values(self):
        # a DecimalField gives Decimals: they are read as numbers, not as opaque objects
        np.testing.assert_allclose(scoring.binary_brier([Decimal("0.7"), Decimal("0.2")], 1), [0.09, 0.64])
        assert scoring.binary_log(Decimal("0.8"), 0) == pytest.approx(math.log(0.2))

    @pytest.mark.parametrize("bad", [-0.1, 1.5, 1.0000001, -1e-12, float("nan"), float("inf")])
    def test_rejects_invalid_probabilities(self, bad):
        with pytest.raises(ValueError, match=r"^probabilities must be finite numbers in \[0, 1\]$"):
            scoring.binary_brier(bad, 1)
        with pytest.raises(ValueError, match=r"^probabilities must be finite numbers in \[0, 1\]$"):
            scoring.binary_log([0.5, bad], 0)

    @pytest.mark.parametrize("outcome", [2, -1])
    def test_rejects_unknown_outcome(self, outcome):
        with pytest.raises(ValueError, match=f"^binary outcome must be 0 or 1, got {outcome}$"):
            scoring.binary_log(0.5, outcome)

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

    def test_each_row_gets_its_own_score(self):
        # row 2: (0.2-1)^2 + 0.2^2 + 0.6^2 = 0.64 + 0.04 + 0.36
        rows = [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]]
        np.testing.assert_allclose(scoring.categorical_brier(rows, 0), [0.38, 1.04, 0.0], atol=1e-12)
        np.testing.assert_allclose(scoring.categorical_log(rows, 0), [math.log(0.5), math.log(0.2), 0.0], atol=1e-12)

    def test_one_forecast_gives_a_float_and_rows_an_array(self):
        assert type(scoring.categorical_brier([0.5, 0.3, 0.2], 0)) is float
        assert type(scoring.categorical_log([0.5, 0.3, 0.2], 0)) is float
        assert scoring.categorical_brier([[0.5, 0.3, 0.2]], 0).shape == (1,)
        assert scoring.categorical_log([[0.5, 0.3, 0.2]], 0).shape == (1,)

    def test_log_floor_applies_below_a_tenth_of_a_percent(self):
        np.testing.assert_allclose(
            scoring.categorical_log([[0.0, 0.5, 0.5], [0.0005, 0.4995, 0.5], [0.002, 0.498, 0.5]], 0),
            [LN_FLOOR, LN_FLOOR, math.log(0.002)],
        )

    def test_decimal_probabilities_score_as_their_values(self):
        forecast = [Decimal("0.5"), Decimal("0.3"), Decimal("0.2")]
        assert scoring.categorical_brier(forecast, 0) == pytest.approx(0.38)
        assert scoring.categorical_log(forecast, 2) == pytest.approx(math.log(0.2))

    def test_rejects_vectors_not_summing_to_one(self):
        with pytest.raises(ValueError, match=r"^each forecast's probabilities must sum to 1$"):
            scoring.categorical_brier([0.5, 0.3, 0.3], 0)
        with pytest.raises(ValueError, match="must sum to 1"):  # every row is checked, not just the first
            scoring.categorical_log([[0.5, 0.5], [0.5, 0.6]], 0)

    def test_sums_within_a_hundred_thousandth_of_one_are_accepted(self):
        # stored decimals round: a sum off by ~1e-5 is still a forecast, 1.2e-5 is not (numpy's allclose with
        # rtol 1e-5 and atol 1e-6)
        assert scoring.categorical_brier([0.5, 0.5 + 1.05e-5], 0) == pytest.approx(0.25 + (0.5 + 1.05e-5) ** 2)
        with pytest.raises(ValueError, match="must sum to 1"):
            scoring.categorical_brier([0.5, 0.5 + 1.2e-5], 0)

    @pytest.mark.parametrize(
        "bad",
        [
            [1.5, -0.5],  # sums to 1, but neither is a probability
            [-0.5, 1.5],
            [0.5, 1.5, -1.0],
            [1.5, 0.0],  # above 1 (the range is checked before the sum)
            [float("nan"), 0.5, 0.5],
            [float("inf"), 0.5, 0.5],
        ],
    )
    def test_rejects_values_outside_zero_to_one_even_when_they_sum_to_one(self, bad):
        with pytest.raises(ValueError, match=r"^probabilities must be finite numbers in \[0, 1\]$"):
            scoring.categorical_brier(bad, 0)
        with pytest.raises(ValueError, match=r"^probabilities must be finite numbers in \[0, 1\]$"):
            scoring.categorical_log([[0.5, 0.5, 0.0], bad[:3] + [0.0] * (3 - len(bad))], 1)

    def test_certain_rows_are_valid(self):
        np.testing.assert_allclose(scoring.categorical_brier([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], 1), [0.0, 2.0])

    @pytest.mark.parametrize("index", [2, 3, -1])
    def test_rejects_outcome_outside_options(self, index):
        with pytest.raises(ValueError, match=f"^outcome index {index} is not one of the 2 options$"):
            scoring.categorical_log([0.5, 0.5], index)

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
        assert scoring.peer_score(np.zeros((0, 3)), 0).shape == (0,)

    def test_peer_score_of_exactly_two_forecasters(self):
        # each is compared with the other alone: 100 ln(0.8 / 0.4) and its opposite
        np.testing.assert_allclose(
            scoring.peer_score([0.8, 0.4], 1), [100 * math.log(2), -100 * math.log(2)], rtol=1e-12
        )
        np.testing.assert_allclose(
            scoring.peer_score([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]], 0), [100 * math.log(3.5), -100 * math.log(3.5)]
        )

    def test_peer_and_baseline_use_the_log_floor(self):
        # a forecast of 0 on what happened scores as 0.001
        np.testing.assert_allclose(
            scoring.peer_score([0.0, 0.5], 1), [100 * (LN_FLOOR - math.log(0.5)), 100 * (math.log(0.5) - LN_FLOOR)]
        )
        np.testing.assert_allclose(scoring.baseline_score([0.0, 1.0], 1), [100 * (math.log2(0.001) + 1), 100.0])
        np.testing.assert_allclose(
            scoring.baseline_score([[0.0, 0.5, 0.5]], 0), [100 * (math.log(0.001) + math.log(3)) / math.log(3)]
        )

    def test_decimal_probabilities_score_as_their_values(self):
        np.testing.assert_allclose(
            scoring.baseline_score([Decimal("0.5"), Decimal("0.25")], 1), [0.0, -100.0], atol=1e-12
        )
        np.testing.assert_allclose(
            scoring.peer_score([Decimal("0.8"), Decimal("0.4")], 1), [100 * math.log(2), -100 * math.log(2)]
        )

    def test_spot_scores_hand_computed(self):
        # two forecasters on a binary question that resolved YES: 0.8 and 0.4
        spot = scoring.spot_scores([[0.2, 0.8], [0.6, 0.4]], 1)
        assert set(spot) == {"brier", "log", "baseline", "peer"}
        np.testing.assert_allclose(spot["brier"], [0.04, 0.36])
        np.testing.assert_allclose(spot["log"], [math.log(0.8), math.log(0.4)])
        np.testing.assert_allclose(spot["baseline"], [100 * (math.log2(0.8) + 1), 100 * (math.log2(0.4) + 1)])
        np.testing.assert_allclose(spot["peer"], [100 * math.log(2), -100 * math.log(2)])
        # three options (the multiple-choice Brier sums over options), option 2 happened
        spot = scoring.spot_scores([[Decimal("0.2"), Decimal("0.2"), Decimal("0.6")]], 2)
        np.testing.assert_allclose(spot["brier"], [0.04 + 0.04 + 0.16])
        np.testing.assert_allclose(spot["log"], [math.log(0.6)])
        np.testing.assert_allclose(spot["baseline"], [100 * math.log(0.6 * 3) / math.log(3)])
        np.testing.assert_allclose(spot["peer"], [0.0])

    def test_uniform_scores_hand_computed(self):
        # the uniform forecast: Brier (k-1)/k (binary: 0.25), log ln(1/k), 0 baseline and peer points
        two, four = scoring.uniform_scores(2, 1), scoring.uniform_scores(4, 3)
        assert two == pytest.approx({"brier": 0.25, "log": math.log(0.5), "baseline": 0.0, "peer": 0.0})
        assert four == pytest.approx({"brier": 0.75, "log": math.log(0.25), "baseline": 0.0, "peer": 0.0}, abs=1e-12)

    @given(st.lists(probabilities, min_size=2, max_size=30), st.sampled_from([0, 1]), st.randoms())
    def test_peer_scores_sum_to_zero_and_follow_their_forecaster(self, values, outcome, rng):
        scores = scoring.peer_score(values, outcome)
        assert scores.sum() == pytest.approx(0.0, abs=1e-6)
        # the definition, one forecaster at a time: 100 (ln p_i - mean of the others' ln p_j)
        logs = [math.log(v if outcome == 1 else 1 - v) for v in values]
        for i, score in enumerate(scores):
            others = logs[:i] + logs[i + 1 :]
            assert score == pytest.approx(100 * (logs[i] - sum(others) / len(others)), rel=1e-9, abs=1e-9)
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

    def test_a_question_that_does_not_open_at_zero(self):
        # The hand-computed case above on epoch-like times: the same numbers, 1.7e9 seconds later.
        t0 = 1_700_000_000.0
        result = scoring.time_averaged_scores(
            [0, 1, 0],
            [t0, t0 + 5, t0 + 10],
            [[0.5, 0.5], [0.2, 0.8], [0.1, 0.9]],
            1,
            opens_at=t0,
            closes_at=t0 + 20,
        )
        np.testing.assert_allclose(result["coverage"], [1.0, 0.75])
        np.testing.assert_allclose(result["brier"], [(0.25 * 10 + 0.01 * 10) / 20, 0.04])
        f0 = (100 * math.log(0.5 / 0.8) * 5 + 100 * math.log(0.9 / 0.8) * 10) / 20
        np.testing.assert_allclose(result["peer"], [f0, -f0])
        # and on a question opening at 100 (not 0) whose forecasts started late
        late = scoring.time_averaged_scores([0], [140], [[0.2, 0.8]], 1, opens_at=100, closes_at=200)
        np.testing.assert_allclose(late["coverage"], [0.6])
        np.testing.assert_allclose(late["baseline"], [0.6 * 100 * (math.log2(0.8) + 1)])
        np.testing.assert_allclose(late["brier"], [0.04])

    @pytest.mark.parametrize("closes_at", [50.0, 49.0])
    def test_a_period_that_does_not_run_forwards_is_refused(self, closes_at):
        with pytest.raises(ValueError, match=r"^closes_at must be after opens_at$"):
            scoring.time_averaged_scores([0], [50], [[0.5, 0.5]], 1, opens_at=50.0, closes_at=closes_at)

    def test_no_forecasts(self):
        result = scoring.time_averaged_scores([], [], np.zeros((0, 2)), 1, opens_at=0, closes_at=10)
        assert set(result) == {"brier", "log", "baseline", "peer", "coverage"}
        assert all(values.shape == (0,) for values in result.values())
        result = scoring.time_averaged_scores([], [], np.zeros((0, 2)), 1, opens_at=0, closes_at=10, n_forecasters=3)
        assert set(result) == {"brier", "log", "baseline", "peer", "coverage"}
        assert all(values.shape == (3,) for values in result.values())
        for name in ("baseline", "peer", "coverage"):
            np.testing.assert_array_equal(result[name], [0.0, 0.0, 0.0])

    def test_forecasters_without_a_standing_forecast_and_a_lone_forecaster_raise_no_float_errors(self):
        # n_forecasters counts one who never forecast; forecaster 1 forecasts after the end; forecaster 0 is alone
        # for the whole period (the peer term's c - 1 = 0), and replaces a forecast at once (an interval of 0).
        # Every float error is trapped: none may happen outside the guarded divisions.
        with np.errstate(all="raise"):
            result = scoring.time_averaged_scores(
                [0, 0, 1],
                [0, 0, 8],
                [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]],
                1,
                opens_at=0,
                closes_at=10,
                ended_at=6,
                n_forecasters=3,
            )
        np.testing.assert_allclose(result["coverage"], [0.6, 0.0, 0.0])
        np.testing.assert_allclose(result["peer"], [0.0, 0.0, 0.0])
        np.testing.assert_allclose(result["baseline"], [0.6 * 100 * (math.log2(0.8) + 1), 0.0, 0.0])
        assert result["brier"][0] == pytest.approx((6 * 0.04 + 4 * 0.25) / 10)
        assert np.isnan(result["brier"][1:]).all() and np.isnan(result["log"][1:]).all()

    def test_time_averaged_peer_uses_the_log_floor(self):
        # a forecaster certain of NO on a YES question, against one at 50%, over the whole period
        result = scoring.time_averaged_scores([0, 1], [0, 0], [[1.0, 0.0], [0.5, 0.5]], 1, opens_at=0, closes_at=10)
        np.testing.assert_allclose(result["peer"], [100 * math.log(0.001 / 0.5), 100 * math.log(0.5 / 0.001)])
        np.testing.assert_allclose(result["log"], [LN_FLOOR, math.log(0.5)])

    def test_decimal_probabilities_score_as_their_values(self):
        result = scoring.time_averaged_scores(
            [0, 1],
            [0, 0],
            [[Decimal("0.2"), Decimal("0.8")], [Decimal("0.6"), Decimal("0.4")]],
            1,
            opens_at=0,
            closes_at=10,
        )
        np.testing.assert_allclose(result["peer"], [100 * math.log(2), -100 * math.log(2)])
        np.testing.assert_allclose(result["brier"], [0.04, 0.36])

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
        # and every score is the moment-by-moment definition, summed over the 100 unit steps (forecasts come at
        # whole times, so each step has one set of standing forecasts)
        reference = moment_by_moment(who, [int(t) for t in when], [q for *_, q in forecasts], outcome, 5, 100)
        for name in ("baseline", "peer", "coverage", "brier", "log"):
            np.testing.assert_allclose(base[name], reference[name], rtol=1e-9, atol=1e-9, err_msg=name)


def moment_by_moment(who, when, p_yes, outcome, n, closes_at):
    """The time-averaged scores of a question open over [0, closes_at) stepped one time unit at a time: at each
    step the standing forecast of each forecaster is their latest one made at or before it (the later one in the
    input on a tie). Baseline and peer average over the whole period; Brier and log over [first forecast, close)."""
    totals = {name: [0.0] * n for name in ("baseline", "peer", "coverage", "brier", "log")}
    first = [None] * n
    for t in range(closes_at):
        standing = {}
        for made, _, f, q in sorted(zip(when, range(len(who)), who, p_yes, strict=True)):  # by time, then input
            if made <= t:
                standing[f] = q
        logs = {f: math.log(max(q if outcome == 1 else 1 - q, 0.001)) for f, q in standing.items()}
        for f, q in standing.items():
            first[f] = t if first[f] is None else first[f]
            totals["coverage"][f] += 1
            totals["baseline"][f] += 100 * (logs[f] / math.log(2) + 1)
            totals["brier"][f] += (q - outcome) ** 2
            totals["log"][f] += logs[f]
            if len(standing) > 1:
                others = [logs[g] for g in standing if g != f]
                totals["peer"][f] += 100 * (logs[f] - sum(others) / len(others))
    result = {name: [v / closes_at for v in totals[name]] for name in ("baseline", "peer", "coverage")}
    for name in ("brier", "log"):
        result[name] = [math.nan if first[f] is None else totals[name][f] / (closes_at - first[f]) for f in range(n)]
    return result


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

    def test_four_bins_row_by_row(self):
        # bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: 0.1 and 0.2 (one happened), nothing, 0.6, 0.8 and 1.0
        table = scoring.calibration_table([0.1, 0.2, 0.6, 0.8, 1.0], [1, 0, 0, 1, 1], bins=4)
        assert table == [
            {
                "bin_low": 0.0,
                "bin_high": 0.25,
                "count": 2,
                "mean_forecast": pytest.approx(0.15),
                "observed_frequency": 0.5,
            },
            {"bin_low": 0.25, "bin_high": 0.5, "count": 0, "mean_forecast": None, "observed_frequency": None},
            {
                "bin_low": 0.5,
                "bin_high": 0.75,
                "count": 1,
                "mean_forecast": pytest.approx(0.6),
                "observed_frequency": 0.0,
            },
            {
                "bin_low": 0.75,
                "bin_high": 1.0,
                "count": 2,
                "mean_forecast": pytest.approx(0.9),
                "observed_frequency": 1.0,
            },
        ]
        # ECE: (2 |0.15 - 0.5| + 1 |0.6 - 0| + 2 |0.9 - 1|) / 5
        assert scoring.expected_calibration_error([0.1, 0.2, 0.6, 0.8, 1.0], [1, 0, 0, 1, 1], bins=4) == pytest.approx(
            (2 * 0.35 + 0.6 + 2 * 0.1) / 5
        )

    def test_ece_uses_ten_bins_unless_told(self):
        # 0.02 and 0.095 share the first of 10 bins (mean 0.0575 against 0.5), not of 11 (0.095 * 11 = 1.045)
        assert scoring.expected_calibration_error([0.02, 0.095], [0, 1]) == pytest.approx(0.4425)
        assert scoring.expected_calibration_error([0.02, 0.095], [0, 1], bins=11) == pytest.approx(0.4625)
        assert scoring.expected_calibration_error([0.05, 0.64], [0, 1], bins=2) == pytest.approx(0.205)

    def test_ece_of_one_forecast_and_of_none(self):
        assert scoring.expected_calibration_error([0.3], [1]) == pytest.approx(0.7)
        assert math.isnan(scoring.expected_calibration_error([], []))
