import itertools
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.continuous import scoring
from forecasting.continuous.build import cdf_from_median_interval
from forecasting.continuous.grid import Scale

pytestmark = pytest.mark.filterwarnings("error")

U = np.linspace(0.0, 1.0, 201)
CLOSED = Scale(0.0, 100.0)
OPEN = Scale(0.0, 100.0, open_lower=True, open_upper=True)


def tails(below, above):
    return below + (1 - below - above) * U


def bump(at, height, base=U):
    """``base`` with extra mass ``height`` in the bucket ending at grid point ``at`` (renormalised inside)."""
    pmf = np.diff(base)
    pmf = pmf * (1 - height / pmf.sum())
    pmf[at - 1] += height
    return np.concatenate([[base[0]], base[0] + np.cumsum(pmf)])


def random_cdf(rng, below=0.0, above=0.0):
    inside = rng.dirichlet(np.ones(200)) * (1 - below - above) * 0.9 + (1 - below - above) * 0.1 / 200
    return np.concatenate([[below], below + np.cumsum(inside)])


class TestLogDensity:
    def test_uniform_has_log_density_zero(self):
        assert scoring.log_density(U, CLOSED, 0.37) == pytest.approx(0.0, abs=1e-12)

    def test_in_range_is_log_of_mass_times_200(self):
        cdf = bump(120, 0.3)
        p = 0.3 + 0.7 / 200
        assert scoring.log_density(cdf, CLOSED, 119.5 / 200) == pytest.approx(math.log(p * 200))
        assert scoring.log_density(cdf, CLOSED, 0.6) == pytest.approx(math.log(p * 200))  # the bucket's right edge
        assert scoring.log_density(cdf, CLOSED, 0.6 + 1e-9) == pytest.approx(math.log(0.7))
        assert scoring.log_density(cdf, CLOSED, 0.0) == pytest.approx(math.log(0.7))

    def test_beyond_the_range_is_log_of_the_tail_mass(self):
        cdf = tails(0.02, 0.07)
        assert scoring.log_density(cdf, OPEN, -math.inf) == pytest.approx(math.log(0.02))
        assert scoring.log_density(cdf, OPEN, -0.3) == pytest.approx(math.log(0.02))
        assert scoring.log_density(cdf, OPEN, 1.2) == pytest.approx(math.log(0.07))
        assert scoring.log_density(cdf, OPEN, 1.0) == pytest.approx(math.log(0.91))

    def test_floor_keeps_it_finite(self):
        cdf = np.concatenate([np.zeros(100), np.linspace(0, 1, 101)])
        assert scoring.log_density(cdf, CLOSED, 0.1) == pytest.approx(math.log(1e-9 * 200))
        assert scoring.log_density(U, OPEN, 2.0) == pytest.approx(math.log(1e-9))

    def test_outcome_beyond_a_closed_bound_is_an_error(self):
        with pytest.raises(ValueError) as error:
            scoring.log_density(U, Scale(0, 1, open_upper=True), -0.1)
        assert str(error.value) == "the outcome is below the range but the lower bound is closed"
        with pytest.raises(ValueError) as error:
            scoring.log_density(U, Scale(0, 1, open_lower=True), 1.1)
        assert str(error.value) == "the outcome is above the range but the upper bound is closed"

    def test_accepts_decimals(self):
        cdf = [Decimal(k) / 200 for k in range(201)]
        assert scoring.log_density(cdf, CLOSED, 0.3) == pytest.approx(0.0, abs=1e-12)

    @settings(max_examples=30)
    @given(st.integers(0, 2**32 - 1), st.sampled_from([(0.0, 0.0), (0.03, 0.0), (0.0, 0.05), (0.1, 0.2)]))
    def test_proper(self, seed, tail_masses):
        # E_{outcome ~ G}[log score of F] is largest for F = G (outcomes: bucket midpoints and the tails)
        rng = np.random.default_rng(seed)
        scale = Scale(0, 1, open_lower=tail_masses[0] > 0, open_upper=tail_masses[1] > 0)
        truth, other = random_cdf(rng, *tail_masses), random_cdf(rng, *tail_masses)
        outcomes = [-1.0, *((np.arange(200) + 0.5) / 200), 2.0]
        weights = np.concatenate([[truth[0]], np.diff(truth), [1 - truth[-1]]])
        keep = [scale.open_lower, *[True] * 200, scale.open_upper]

        def expected(cdf):
            scores = [scoring.log_density(cdf, scale, y) if k else 0.0 for y, k in zip(outcomes, keep, strict=True)]
            return float(np.dot(weights, scores))

        assert expected(truth) >= expected(other)
        assert expected(truth) >= expected(0.5 * (truth + other))


class TestBaselineAndPeer:
    def test_metaculus_examples(self):
        # scoring/score_math.py's tests: the uniform forecast and the 5%-tails one score 0 in bucket 150;
        # e times the uniform mass in the outcome's bucket scores 50, 1/e times it -50
        assert scoring.baseline_score(U, CLOSED, 149.5 / 200)[0] == pytest.approx(0.0, abs=1e-9)
        assert scoring.baseline_score(np.linspace(0.05, 0.95, 201), OPEN, 149.5 / 200)[0] == pytest.approx(
            0.0, abs=1e-9
        )
        e_times = bump(150, (math.e - 1) / 199)
        assert np.diff(e_times)[149] == pytest.approx(math.e / 200)
        assert scoring.baseline_score(e_times, CLOSED, 149.5 / 200)[0] == pytest.approx(50.0)
        assert scoring.baseline_score(bump(150, (1 / math.e - 1) / 199), CLOSED, 0.75)[0] == pytest.approx(-50.0)

    def test_hand_computed_in_range(self):
        # bucket mass p against the baseline (1 - 0.05 * open bounds) / 200: 100 * ln(p / b) / 2
        cdf = tails(0.1, 0.1)  # p = 0.8 / 200 everywhere inside
        assert scoring.baseline_score(cdf, OPEN, 0.5)[0] == pytest.approx(50 * math.log(0.8 / 0.9))
        one_open = Scale(0, 1, open_upper=True)
        assert scoring.baseline_score(tails(0.0, 0.2), one_open, 0.5)[0] == pytest.approx(50 * math.log(0.8 / 0.95))

    def test_hand_computed_beyond_the_range(self):
        cdf = tails(0.05 * math.e, 0.01)
        assert scoring.baseline_score(cdf, OPEN, -0.5)[0] == pytest.approx(50.0)
        assert scoring.baseline_score(cdf, OPEN, math.inf)[0] == pytest.approx(50 * math.log(0.01 / 0.05))

    def test_baseline_forecast_scores_zero_everywhere(self):
        for scale in (CLOSED, OPEN, Scale(0, 1, open_lower=True), Scale(0, 1, open_upper=True)):
            cdf = scoring.baseline_cdf(scale)
            positions = [0.0, 0.3, 1.0] + [-1.0] * scale.open_lower + [2.0] * scale.open_upper
            for y in positions:
                assert scoring.baseline_score(cdf, scale, y)[0] == pytest.approx(0.0, abs=1e-9)

    def test_baseline_cdf(self):
        np.testing.assert_allclose(scoring.baseline_cdf(OPEN), 0.05 + 0.9 * U)
        np.testing.assert_allclose(scoring.baseline_cdf(Scale(0, 1, open_lower=True)), 0.05 + 0.95 * U)
        np.testing.assert_allclose(scoring.baseline_cdf(Scale(0, 1, open_upper=True)), 0.95 * U)
        np.testing.assert_allclose(scoring.baseline_cdf(CLOSED), U)

    def test_two_forecasters(self):
        a, b = bump(100, 0.1), U
        la, lb = math.log((0.1 + 0.9 / 200) * 200), 0.0
        np.testing.assert_allclose(scoring.peer_score([a, b], CLOSED, 0.4975), [50 * (la - lb), 50 * (lb - la)])

    def test_lone_forecaster_scores_zero(self):
        np.testing.assert_array_equal(scoring.peer_score([bump(5, 0.1)], CLOSED, 0.02), [0.0])
        np.testing.assert_array_equal(scoring.peer_score(bump(5, 0.1), CLOSED, 0.02), [0.0])

    @settings(max_examples=30)
    @given(st.integers(2, 7), st.integers(0, 2**32 - 1), st.floats(-0.5, 1.5))
    def test_peer_matches_metaculus_geometric_mean_formula(self, n, seed, y):
        rng = np.random.default_rng(seed)
        cdfs = np.array([random_cdf(rng, 0.02, 0.03) for _ in range(n)])
        bucket = 0 if y < 0 else 201 if y > 1 else max(int(y * 200 + 1 - 1e-10), 1)
        pmfs = np.concatenate([cdfs[:, :1], np.diff(cdfs, axis=1), 1 - cdfs[:, -1:]], axis=1)
        geometric_mean = np.exp(np.log(pmfs).mean(axis=0))
        expected = 100 * (n / (n - 1)) * np.log(pmfs[:, bucket] / geometric_mean[bucket]) / 2
        result = scoring.peer_score(cdfs, OPEN, y)
        np.testing.assert_allclose(result, expected, atol=1e-9)
        assert result.sum() == pytest.approx(0.0, abs=1e-9)
        order = rng.permutation(n)
        np.testing.assert_allclose(scoring.peer_score(cdfs[order], OPEN, y), result[order], atol=1e-9)

    def test_rejects_wrong_shapes(self):
        with pytest.raises(ValueError) as error:
            scoring.baseline_score(np.zeros((2, 200)), CLOSED, 0.5)
        assert str(error.value) == "CDFs must be an (n forecasters, 201) array"
        with pytest.raises(ValueError) as error:
            scoring.peer_score(np.full((2, 201), np.nan), CLOSED, 0.5)
        assert str(error.value) == "CDF values must be finite numbers"


def trapezoid_by_hand(cdf, y):
    y = min(max(y, 0.0), 1.0)
    values = [(cdf[k] - (1.0 if k / 200 >= y else 0.0)) ** 2 for k in range(201)]
    return sum((values[k] + values[k + 1]) / 2 / 200 for k in range(200))


class TestCrps:
    @pytest.mark.parametrize("y", [0.0, 0.25, 0.5, 0.8, 1.0, 0.123])
    def test_uniform(self, y):
        # exact integral 1/3 - y + y^2; the trapezoid rule is within half a bucket of it
        assert scoring.crps(U, y) == pytest.approx(1 / 3 - y + y * y, abs=1 / 400)
        assert scoring.crps(U, y) == pytest.approx(trapezoid_by_hand(U, y), abs=1e-12)

    def test_outcomes_beyond_the_range_are_clipped(self):
        cdf = tails(0.1, 0.1)
        assert scoring.crps(cdf, -math.inf) == pytest.approx(scoring.crps(cdf, 0.0))
        assert scoring.crps(cdf, 3.0) == pytest.approx(scoring.crps(cdf, 1.0))
        # all indicators 1 below the range: the integral of (F - 1)^2 = (0.9 - 0.8 u)^2 from 0 to 1
        assert scoring.crps(cdf, -1.0) == pytest.approx((0.9**3 - 0.1**3) / (3 * 0.8), abs=1e-5)

    def test_steep_forecast_at_the_outcome_scores_almost_zero(self):
        cdf = cdf_from_median_interval(40.0, 39.9, 40.1, OPEN)  # as narrow as the grid allows
        assert scoring.crps(cdf, 0.4) < 0.004
        assert scoring.crps(cdf, 0.9) > 0.45

    def test_random_forecasts_match_the_trapezoid_by_hand(self):
        rng = np.random.default_rng(7)
        cdfs = np.array([random_cdf(rng, 0.05, 0.05) for _ in range(3)])
        result = scoring.crps(cdfs, 0.4321)
        assert result.shape == (3,)
        np.testing.assert_allclose(result, [trapezoid_by_hand(c, 0.4321) for c in cdfs], rtol=1e-12)
        assert isinstance(scoring.crps(cdfs[0], 0.4321), float)

    @settings(max_examples=30)
    @given(st.integers(0, 2**32 - 1), st.booleans())
    def test_proper(self, seed, open_lower):
        # outcomes at the grid points (bucket k's mass at k/200, the lower tail below the range)
        rng = np.random.default_rng(seed)
        below = 0.05 if open_lower else 0.0
        truth, other = random_cdf(rng, below), random_cdf(rng, below)
        outcomes = [-1.0, *(np.arange(1, 201) / 200)]
        weights = np.concatenate([[truth[0]], np.diff(truth)])

        def expected(cdf):
            return float(np.dot(weights, [scoring.crps(cdf, y) for y in outcomes]))

        assert expected(truth) <= expected(other)
        assert expected(truth) <= expected(0.5 * (truth + other))

    def test_rejects_nan(self):
        with pytest.raises(ValueError) as error:
            scoring.crps(U, math.nan)
        assert str(error.value) == "an outcome position must be a number"


class TestSpot:
    def test_keys_and_values(self):
        cdfs = np.array([tails(0.1, 0.1), bump(100, 0.2, base=tails(0.05, 0.05))])
        spot = scoring.spot_scores(cdfs, OPEN, 0.4975)
        assert set(spot) == {"log", "baseline", "peer", "crps"}
        np.testing.assert_allclose(spot["log"], [math.log(0.8), math.log((0.2 + 0.7 / 200) * 200)])
        np.testing.assert_allclose(spot["baseline"], 50 * (spot["log"] - math.log(0.9)))
        np.testing.assert_allclose(spot["peer"], np.array([-50, 50]) * (spot["log"][1] - spot["log"][0]))
        np.testing.assert_allclose(spot["crps"], [trapezoid_by_hand(c, 0.4975) for c in cdfs])

    def test_uniform_scores(self):
        scores = scoring.uniform_scores(OPEN, 0.3)
        assert scores["baseline"] == pytest.approx(0.0, abs=1e-12)
        assert scores["peer"] == 0.0
        assert scores["log"] == pytest.approx(math.log(0.9))
        assert scoring.uniform_scores(OPEN, 1.5)["log"] == pytest.approx(math.log(0.05))
        assert scores["crps"] == pytest.approx(trapezoid_by_hand(0.05 + 0.9 * U, 0.3))


def brute_force(who, made_at, cdfs, scale, y, opens_at, closes_at, ended_at, n):
    """Time averages by walking every interval between events (independent of the module's bookkeeping)."""
    ended_at = min(ended_at, closes_at)
    when = np.clip(made_at, opens_at, ended_at)
    events = sorted({opens_at, ended_at, *when.tolist()})
    totals = {name: np.zeros(n) for name in ("log", "crps", "baseline", "peer", "coverage")}
    first = np.full(n, np.inf)
    for start, end in itertools.pairwise(events):
        standing = {}
        for i in np.lexsort((np.arange(len(who)), when)):
            if when[i] <= start:
                standing[who[i]] = i
        if not standing:
            continue
        forecasters = sorted(standing)
        spot = scoring.spot_scores(cdfs[[standing[f] for f in forecasters]], scale, y)
        for j, f in enumerate(forecasters):
            first[f] = min(first[f], start)
            for name in ("log", "crps", "baseline", "peer"):
                totals[name][f] += spot[name][j] * (end - start)
            totals["coverage"][f] += end - start
    uniform = scoring.uniform_scores(scale, y)
    result = {"coverage": totals["coverage"] / (closes_at - opens_at)}
    for name in ("baseline", "peer"):
        result[name] = totals[name] / (closes_at - opens_at)
    for name in ("log", "crps"):
        stood = totals["coverage"] > 0
        padded = totals[name] + uniform[name] * (closes_at - ended_at)
        result[name] = np.where(stood, padded / np.where(stood, closes_at - first, 1), np.nan)
    return result


class TestTimeAveraged:
    def test_question_opening_late_with_early_end(self):
        a, b = bump(100, 0.2, base=tails(0.05, 0.05)), tails(0.1, 0.1)
        y = 0.4975  # bucket 100
        result = scoring.time_averaged_scores(
            [0, 1], [50.0, 150.0], [a, b], OPEN, y, opens_at=100.0, closes_at=200.0, ended_at=180.0
        )
        la, lb = math.log((0.2 + 0.7 / 200) * 200), math.log(0.8)  # bump: 0.9 - 0.2 spread evenly, plus 0.2
        np.testing.assert_allclose(result["coverage"], [0.8, 0.3])
        # baseline: over the whole period [100, 200]; A stood 80, B 30
        base = 50 * (np.array([la, lb]) - math.log(0.9))
        np.testing.assert_allclose(result["baseline"], [base[0] * 0.8, base[1] * 0.3])
        # peer: both stood only over [150, 180]
        np.testing.assert_allclose(result["peer"], [50 * (la - lb) * 0.3, 50 * (lb - la) * 0.3])
        # log: from the first forecast to the scheduled close, the baseline forecast's ln(0.9) after the end
        np.testing.assert_allclose(
            result["log"], [(la * 80 + math.log(0.9) * 20) / 100, (lb * 30 + math.log(0.9) * 20) / 50]
        )
        ca, cb, cu = (trapezoid_by_hand(c, y) for c in (a, b, 0.05 + 0.9 * U))
        np.testing.assert_allclose(result["crps"], [(ca * 80 + cu * 20) / 100, (cb * 30 + cu * 20) / 50])

    def test_later_forecast_replaces_the_earlier(self):
        a1, a2 = tails(0.1, 0.1), bump(60, 0.1, base=tails(0.1, 0.1))
        result = scoring.time_averaged_scores([0, 0], [10.0, 0.0], [a2, a1], OPEN, 0.2975, opens_at=0.0, closes_at=20.0)
        l1, l2 = math.log(0.8), scoring.log_density(a2, OPEN, 0.2975)
        assert result["log"][0] == pytest.approx((l1 + l2) / 2)
        assert result["coverage"][0] == pytest.approx(1.0)
        assert result["peer"][0] == 0.0

    def test_forecasters_without_standing_forecasts(self):
        result = scoring.time_averaged_scores(
            [1], [95.0], [tails(0.1, 0.1)], OPEN, 0.5, opens_at=0.0, closes_at=100.0, ended_at=90.0, n_forecasters=3
        )
        assert np.isnan(result["log"]).all() and np.isnan(result["crps"]).all()
        np.testing.assert_array_equal(result["baseline"], np.zeros(3))
        np.testing.assert_array_equal(result["coverage"], np.zeros(3))

    def test_no_forecasts(self):
        result = scoring.time_averaged_scores([], [], [], OPEN, 0.5, opens_at=0.0, closes_at=1.0, n_forecasters=2)
        assert set(result) == {"log", "baseline", "peer", "crps", "coverage"}
        np.testing.assert_array_equal(result["peer"], np.zeros(2))
        result = scoring.time_averaged_scores([], [], [], OPEN, 0.5, opens_at=0.0, closes_at=1.0)
        assert all(values.shape == (0,) for values in result.values())

    def test_accepts_float_indexes_and_decimal_times(self):
        # e.g. columns of a data frame, or Django's DecimalField
        a, b = tails(0.1, 0.1), tails(0.2, 0.2)
        expected = scoring.time_averaged_scores([0, 1], [0.0, 5.0], [a, b], OPEN, 0.5, opens_at=0.0, closes_at=10.0)
        result = scoring.time_averaged_scores(
            np.array([0.0, 1.0]), [Decimal(0), Decimal(5)], [a, b], OPEN, 0.5, opens_at=0.0, closes_at=10.0
        )
        for name in expected:
            np.testing.assert_allclose(result[name], expected[name])
        assert expected["peer"][0] == pytest.approx(50 * (math.log(0.8) - math.log(0.6)) / 2)

    def test_short_forecasts_are_padded_with_the_baseline_forecast(self):
        # A stood only 0.5 time units before the early end: the rest of its period is the baseline forecast's
        result = scoring.time_averaged_scores(
            [0], [9.0], [tails(0.1, 0.1)], OPEN, 0.5, opens_at=0.0, closes_at=10.0, ended_at=9.5
        )
        assert result["log"][0] == pytest.approx((0.5 * math.log(0.8) + 0.5 * math.log(0.9)) / 1.0)
        assert result["coverage"][0] == pytest.approx(0.05)

    def test_rejects_bad_periods_and_inputs(self):
        with pytest.raises(ValueError) as error:
            scoring.time_averaged_scores([0], [0.0], [U], CLOSED, 0.5, opens_at=5.0, closes_at=5.0)
        assert str(error.value) == "closes_at must be after opens_at"
        with pytest.raises(ValueError) as error:
            scoring.time_averaged_scores([0, 1], [0.0, 1.0], [U], CLOSED, 0.5, opens_at=0.0, closes_at=5.0)
        assert str(error.value) == "one CDF per forecast"

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 60)), min_size=1, max_size=9),
        st.integers(0, 2**32 - 1),
        st.sampled_from([None, 10.0, 35.0, 80.0]),
        st.floats(-0.5, 1.5),
    )
    def test_matches_brute_force(self, forecasts, seed, ended_at, y):
        rng = np.random.default_rng(seed)
        who = np.array([f for f, _ in forecasts])
        made_at = np.array([float(t) for _, t in forecasts])
        cdfs = np.array([random_cdf(rng, 0.02, 0.02) for _ in forecasts])
        opens_at, closes_at = 0.0, 50.0
        result = scoring.time_averaged_scores(
            who, made_at, cdfs, OPEN, y, opens_at=opens_at, closes_at=closes_at, ended_at=ended_at, n_forecasters=5
        )
        expected = brute_force(who, made_at, cdfs, OPEN, y, opens_at, closes_at, ended_at or closes_at, 5)
        for name in ("coverage", "baseline", "peer", "log", "crps"):
            np.testing.assert_allclose(result[name], expected[name], atol=1e-9, err_msg=name)
        assert result["peer"].sum() == pytest.approx(0.0, abs=1e-9)
