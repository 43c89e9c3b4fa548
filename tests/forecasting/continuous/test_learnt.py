"""The learnt pool (``forecasting.continuous.learnt``): skill records and weights, the dispersion factor, extremizing
a CDF, and ``LearntPool``'s walk-forward rules (what is known when a question is aggregated, which pools the factor
learns from). Its behaviour on synthetic crowds is in tests/forecasting/evaluation/."""

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from scipy.stats import norm

from forecasting.continuous import learnt, scoring
from forecasting.continuous.grid import Scale

pytestmark = pytest.mark.filterwarnings("error")  # a warning (a NaN, an unknown optimiser option) is a failure

U = np.linspace(0.0, 1.0, 201)


def line(below, inside):
    """The CDF ``below + inside * u``: ``below`` under the range, uniform density ``inside`` in it."""
    return below + inside * U


def test_skill_records_by_hand():
    records = learnt.SkillRecords()
    records.add(["good", "bad"], [0.01, 0.04])  # relative log CRPS -ln 2 and +ln 2
    np.testing.assert_allclose(records.record(["good", "bad", "new"]), [-math.log(2) / 6, math.log(2) / 6, 0.0])
    w = records.weights(["good", "bad"])
    assert w.sum() == pytest.approx(1.0) and w[0] / w[1] == pytest.approx(2 ** (2 / 3))  # exp(2 * 2 ln 2 / 6)
    np.testing.assert_allclose(records.weights(["x", "y", "z"]), [1 / 3] * 3)


def test_extremizing_a_cdf_keeps_the_median_and_the_bounds():
    cdf = np.r_[0.0, line(0.05, 0.9)[1:]]  # a closed lower bound
    narrow, wide = learnt.extremize_cdf(cdf, 2.0), learnt.extremize_cdf(cdf, 0.5)
    np.testing.assert_array_equal(learnt.extremize_cdf(cdf, 1.0), cdf)
    assert narrow[0] == wide[0] == 0.0
    median = U[100]  # cdf = 0.5 there
    assert narrow[100] == pytest.approx(0.5) and wide[100] == pytest.approx(0.5) and cdf[100] == pytest.approx(0.5)
    assert np.all(narrow[1:100] < cdf[1:100]) and np.all(narrow[101:] > cdf[101:]) and median == 0.5
    assert np.all(wide[1:100] > cdf[1:100]) and np.all(wide[101:] < cdf[101:])
    assert np.all(np.diff(narrow) >= 0) and np.all(np.diff(wide) >= 0)


@pytest.mark.parametrize(("spread", "narrows"), [(0.2, True), (0.04, False)])
def test_the_dispersion_factor_corrects_a_pool_too_wide_or_too_narrow(spread, narrows):
    rng = np.random.default_rng(5)
    centres = rng.uniform(0.3, 0.7, 200)
    positions = centres + rng.normal(0.0, 0.1, 200)  # the truth's sd is 0.1
    pools = norm.cdf(U[None, :], centres[:, None], spread)
    factor = learnt.fit_dispersion(pools, positions)
    assert (factor > 1.1) if narrows else (factor < 0.9)
    few = learnt.fit_dispersion(pools[:5], positions[:5])  # a prior worth 5 questions at 1
    assert abs(math.log(few)) < abs(math.log(learnt.fit_dispersion(pools[:50], positions[:50])))


def test_crps_rows_is_the_cores_crps():
    cdfs = np.array([line(0.1, 0.8), line(0.0, 1.0), norm.cdf(U, 0.4, 0.1)])
    positions = np.array([0.5, -0.3, 0.713])
    expected = [scoring.crps(c, p) for c, p in zip(cdfs, positions, strict=True)]
    np.testing.assert_allclose(learnt.crps_rows(cdfs, positions), expected, rtol=1e-12)


def test_pool_weights_from_records_by_hand():
    # records -ln 2 / 2 and 0: weights exp(ln 2) : 1 = 2 : 1 (SKILL_POWER 2), a newcomer (0) as the average
    np.testing.assert_allclose(learnt.pool_weights([-math.log(2) / 2, 0.0]), [2 / 3, 1 / 3])
    np.testing.assert_allclose(learnt.pool_weights([0.0, 0.0, 0.0]), [1 / 3] * 3)
    np.testing.assert_allclose(learnt.pool_weights([800.0, 0.0]), [0.0, 1.0], atol=1e-300)  # no overflow
    assert learnt.pool_weights([]).size == 0


def test_known_records_are_what_record_gives_for_everyone_seen():
    records = learnt.SkillRecords()
    records.add(["a", "b"], [0.01, 0.04])
    records.add(["a", "c"], [0.02, 0.02])
    known = records.known()
    assert set(known) == {"a", "b", "c"}
    np.testing.assert_allclose([known[f] for f in "abc"], records.record(["a", "b", "c"]))


def test_the_learnt_pool_weighs_and_extremizes_then_stays_valid():
    scale = Scale(0.0, 100.0, open_lower=True, open_upper=True)
    # valid as they stand (5% spread uniformly: every step above the minimum), so standardising changes nothing
    low, high = (0.005 + 0.94 * norm.cdf(U, m, 0.1) + 0.05 * U for m in (0.3, 0.7))
    cdfs = np.vstack([low, high])
    np.testing.assert_allclose(learnt.learnt_pool(cdfs, scale), cdfs.mean(axis=0), atol=1e-9)  # nothing learnt
    towards_low = learnt.learnt_pool(cdfs, scale, weights=[0.9, 0.1])
    np.testing.assert_allclose(towards_low, 0.9 * low + 0.1 * high, atol=1e-9)
    narrowed = learnt.learnt_pool(cdfs, scale, factor=1.5)
    assert narrowed[100] == pytest.approx(cdfs.mean(axis=0)[100], abs=1e-6)  # the median stays
    assert narrowed[40] < cdfs.mean(axis=0)[40] and narrowed[160] > cdfs.mean(axis=0)[160]


# --- independent references: the definitions written out, not the module's functions or constants ---

SCALE = Scale(0.0, 100.0, open_lower=True, open_upper=True)
TRAPEZOID = np.r_[0.5, np.ones(199), 0.5] / 200  # the trapezoid rule's weights on 201 points 1/200 apart
LOG_FACTOR_RANGE = (math.log(0.25), math.log(4.0))  # the documented search range of the dispersion factor
PRIOR_QUESTIONS = 5  # documented: the factor's prior at 1 is worth 5 questions (shrinkage m / (m + 5) of its log)
SHRINK_QUESTIONS = 5  # documented: a skill record counts 5 extra questions at the average


def valid_cdf(centre, sd):
    """A normal CDF mixed with 5% uniform, 0.5% beyond each bound: valid on an open range as it stands (every step
    above Metaculus's minimum 0.00005, each tail above 0.001), so standardising it changes nothing."""
    return 0.005 + 0.94 * norm.cdf(U, centre, sd) + 0.05 * U


def trapezoid_crps(cdf, position):
    """``∫ (F(u) - 1{u >= y})² du`` over the range by the trapezoid rule, the outcome y clipped into [0, 1]."""
    y = min(max(position, 0.0), 1.0)
    return float((np.asarray(cdf) - (y <= U)) ** 2 @ TRAPEZOID)


def extremized(cdf, factor):
    """``logit G = factor * logit F`` solved for G: ``F^a / (F^a + (1 - F)^a)``."""
    f = np.asarray(cdf, dtype=float)
    return f**factor / (f**factor + (1 - f) ** factor)


def factor_by_search(pools, positions):
    """The dispersion factor by its definition: the log factor in [ln 1/4, ln 4] minimising the mean trapezoid CRPS
    of the extremized pools, on a grid of 4001 values refined by a parabola, then shrunk by m / (m + 5)."""
    pools, y = np.atleast_2d(pools), np.clip(np.asarray(positions, dtype=float), 0.0, 1.0)
    logs = np.linspace(*LOG_FACTOR_RANGE, 4001)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = extremized(pools[None, :, :], np.exp(logs)[:, None, None])
    loss = ((g - (U[None, :] >= y[:, None])) ** 2 @ TRAPEZOID).mean(axis=1)
    k = int(np.argmin(loss))
    best = logs[k]
    if 0 < k < len(logs) - 1:
        left, middle, right = loss[k - 1 : k + 2]
        best += (logs[1] - logs[0]) * (left - right) / (2 * (left - 2 * middle + right))
    m = len(y)
    return math.exp(m / (m + PRIOR_QUESTIONS) * best)


def test_crps_rows_by_hand_for_outcomes_beyond_both_open_bounds():
    # F = 0.1 + 0.8u. Beyond the lower bound the outcome's step is 1 everywhere: ∫ (0.9 - 0.8u)² du
    # = (0.9³ - 0.1³) / 2.4 = 0.303333..., and the trapezoid rule on a quadratic g adds exactly
    # h²/12 (g'(1) - g'(0)) = 1.28 / 480000. Beyond the upper bound the position clips to 1, where the step is
    # already 1: ∫ F² (the same 0.303336) with the last point's (F(1) - 1)² = 0.01 instead of 0.81: 0.8 / 400 less.
    below = (0.729 - 0.001) / 2.4 + 1.28 / 480000
    cdfs = np.vstack([line(0.1, 0.8)] * 4)
    expected = [below, below, below - 0.002, below - 0.002]
    np.testing.assert_allclose(learnt.crps_rows(cdfs, [-math.inf, -0.3, math.inf, 1.3]), expected, rtol=1e-12)


def test_crps_rows_is_the_trapezoid_crps_of_each_row_at_its_own_outcome():
    cdfs = np.array([valid_cdf(0.3, 0.05), valid_cdf(0.6, 0.2), line(0.0, 1.0), line(0.2, 0.6), valid_cdf(0.5, 0.1)])
    positions = [0.0, 0.3175, 1.0, -math.inf, math.inf]
    expected = [trapezoid_crps(c, y) for c, y in zip(cdfs, positions, strict=True)]
    np.testing.assert_allclose(learnt.crps_rows(cdfs, positions), expected, rtol=1e-12)
    assert learnt.crps_rows(cdfs[1], [0.3175]) == pytest.approx([trapezoid_crps(cdfs[1], 0.3175)], rel=1e-12)


def test_extremizing_clips_rounding_noise_outside_0_and_1():
    # a pool whose weights sum to 1 within an ulp can end at 1 + 2.2e-16 (or start at -1e-17): 1 and 0, not NaN
    cdf = np.r_[-1e-17, line(0.0, 1.0)[1:-1], 1.0 + 2.2e-16]
    for factor in (1.0, 2.0, 0.5):
        result = learnt.extremize_cdf(cdf, factor)
        assert result[0] == 0.0 and result[-1] == 1.0
        np.testing.assert_allclose(result[1:-1], extremized(U[1:-1], factor), rtol=1e-12)


def test_relative_log_crps_of_a_question_nobody_or_one_forecaster_forecast():
    with np.errstate(all="raise"):  # no mean of nothing
        assert learnt.relative_log_crps([]).size == 0
        records = learnt.SkillRecords()
        records.add([], [])
        assert records.known() == {}
    np.testing.assert_array_equal(learnt.relative_log_crps([0.2]), [0.0])
    # a CRPS of 0 counts as the documented floor 1e-6: ln 1e-6 and ln 1e-4 are ln 10 below and above their mean
    np.testing.assert_allclose(learnt.relative_log_crps([0.0, 1e-4]), [-math.log(10), math.log(10)])


def test_a_forecaster_seen_on_two_questions_accumulates_their_record():
    records = learnt.SkillRecords()
    records.add(["a", "b"], [0.01, 0.04])  # a: -ln 2, b: +ln 2
    records.add(["a", "c"], [0.09, 0.01])  # a: +ln 3 (ln 0.09 - ln 0.01 = 2 ln 3, halved), c: -ln 3
    # each sum divided by its questions + 5
    expected = [(math.log(3) - math.log(2)) / (2 + SHRINK_QUESTIONS), math.log(2) / 6, -math.log(3) / 6]
    np.testing.assert_allclose(records.record(["a", "b", "c"]), expected, rtol=1e-12)
    assert records.known() == pytest.approx(dict(zip("abc", expected, strict=True)), rel=1e-12)


@pytest.mark.parametrize(
    ("ids", "crps", "message"),
    [
        (["a", "b"], [0.01], r"^zip\(\) argument 2 is shorter than argument 1$"),
        (["a"], [0.01, 0.02], r"^zip\(\) argument 2 is longer than argument 1$"),
    ],
)
def test_skill_records_refuse_forecasters_and_scores_that_do_not_pair_up(ids, crps, message):
    with pytest.raises(ValueError, match=message):
        learnt.SkillRecords().add(ids, crps)


def test_pool_weights_of_a_far_better_record_do_not_overflow():
    # record -400: weight exp(800) against exp(0); normalised without overflowing, 1 and e^-800 = 0
    np.testing.assert_array_equal(learnt.pool_weights([-400.0, 0.0]), [1.0, 0.0])


def test_with_no_resolved_question_the_dispersion_factor_is_1():
    assert learnt.fit_dispersion(np.empty((0, 201)), []) == 1.0
    assert learnt.fit_dispersion([], []) == 1.0


@pytest.mark.parametrize(("m", "expected"), [(1, 4 ** (1 / 6)), (5, 2.0)])
def test_outcomes_at_the_pools_median_narrow_it_to_the_bound_shrunk(m, expected):
    # the pool is symmetric about its median 0.5 and so is every outcome's step: narrowing lowers (F - step)² at every
    # grid point, so the minimiser is the bound 4, whose log is shrunk by m / (m + 5): 4^(1/6) for one question, 4^(1/2)
    pools = np.vstack([valid_cdf(0.5, 0.1)] * m)
    assert learnt.fit_dispersion(pools, [0.5] * m) == pytest.approx(expected, rel=2e-5)


def test_outcomes_beyond_both_bounds_widen_the_pool_to_the_bound_shrunk():
    # one outcome below, one above the range: the mean loss is mostly (F² + (1 - F)²) / 2 at each point, least at
    # F = 1/2, so widening as far as allowed, 1/4, shrunk for two questions by 2/7
    pools = np.vstack([valid_cdf(0.5, 0.1)] * 2)
    assert learnt.fit_dispersion(pools, [-math.inf, math.inf]) == pytest.approx(0.25 ** (2 / 7), rel=2e-5)
    assert factor_by_search(pools, [-math.inf, math.inf]) == pytest.approx(0.25 ** (2 / 7), rel=1e-12)


@pytest.mark.parametrize("position", [0.55, 0.7])  # the pool's optimum narrows it (0.55) or widens it (0.7)
def test_the_dispersion_factor_of_exactly_one_question_is_its_crps_minimiser_shrunk_by_one_sixth(position):
    pool = valid_cdf(0.5, 0.1)
    expected = factor_by_search(pool, [position])
    assert (expected > 1.1) if position == 0.55 else (expected < 0.9)
    assert learnt.fit_dispersion(pool, [position]) == pytest.approx(expected, rel=2e-5)  # xatol 1e-4, shrunk by 1/6


def test_decimals_are_numbers_like_any_other():
    # a stored CRPS is a Decimal (Score.value), and the continuous cores take Decimals as numbers throughout
    stored = [Decimal("0.01"), Decimal("0.04")]
    np.testing.assert_allclose(learnt.relative_log_crps(stored), [-math.log(2), math.log(2)])
    records = learnt.SkillRecords()
    records.add(["a", "b"], stored)
    np.testing.assert_allclose(records.record(["a", "b"]), [-math.log(2) / 6, math.log(2) / 6])
    weights = learnt.pool_weights([Decimal("0.5"), Decimal(0)])  # records 1/2 and 0: weights e^-1 : 1
    np.testing.assert_allclose(weights, [1 / (1 + math.e), math.e / (1 + math.e)])
    uniform = [Decimal(k) / 200 for k in range(201)]
    # ∫ (u - 1{u >= 1/2})² du = 1/12; the trapezoid rule adds h²/12 (1 + 1) on the two quadratic pieces: 1/240000
    assert learnt.crps_rows([uniform], [0.5]) == pytest.approx([1 / 12 + 1 / 240000], rel=1e-12)
    np.testing.assert_allclose(learnt.extremize_cdf(uniform, 2.0), extremized(U, 2.0), rtol=1e-12)


# --- LearntPool walk-forward: what is known when a question is aggregated, and what the factor learns from ---


@dataclass
class Question:
    question_id: str
    position: float
    forecaster_ids: np.ndarray
    cdfs: np.ndarray
    scale: Scale = SCALE


def skilled_pair(question_id, position, good, bad):
    """A question where "good" and "bad" forecast ``valid_cdf(*good)`` and ``valid_cdf(*bad)``."""
    return Question(question_id, position, np.array(["good", "bad"]), np.vstack([valid_cdf(*good), valid_cdf(*bad)]))


Q1 = skilled_pair("q1", 0.42, good=(0.4, 0.08), bad=(0.7, 0.1))
Q2 = skilled_pair("q2", 0.63, good=(0.6, 0.08), bad=(0.3, 0.15))


def records_by_hand(*questions):
    """Each forecaster's summed relative log trapezoid CRPS over the questions, divided by their count + 5."""
    sums, counts = {}, {}
    for q in questions:
        logs = [math.log(trapezoid_crps(cdf, q.position)) for cdf in q.cdfs]
        for forecaster, value in zip(q.forecaster_ids, logs, strict=True):
            sums[forecaster] = sums.get(forecaster, 0.0) + value - sum(logs) / len(logs)
            counts[forecaster] = counts.get(forecaster, 0) + 1
    return {f: sums[f] / (counts[f] + SHRINK_QUESTIONS) for f in sums}


def pooled_by_hand(question, records):
    """The linear pool with weights exp(-2 record) (a newcomer: record 0), normalised."""
    w = np.array([math.exp(-2 * records.get(f, 0.0)) for f in question.forecaster_ids])
    return w / w.sum() @ question.cdfs


def test_with_nothing_learnt_the_learnt_pool_is_the_plain_linear_pool():
    pool = learnt.LearntPool()
    assert pool.factor == 1.0
    np.testing.assert_allclose(pool.aggregate(Q1), Q1.cdfs.mean(axis=0), atol=1e-9)  # rounded to 10 decimals
    pool.learn([])
    assert pool.factor == 1.0 and pool.records.known() == {}
    np.testing.assert_allclose(pool.aggregate(Q2), Q2.cdfs.mean(axis=0), atol=1e-9)


def test_learning_a_question_records_its_forecasters_crps_and_refits_the_factor():
    pool = learnt.LearntPool()
    pool.learn([Q1])
    good, bad = trapezoid_crps(Q1.cdfs[0], 0.42), trapezoid_crps(Q1.cdfs[1], 0.42)
    assert good < bad / 9  # "good" is good
    expected = {"good": math.log(good / bad) / 2 / 6, "bad": math.log(bad / good) / 2 / 6}  # exactly one question
    assert pool.records.known() == pytest.approx(expected, rel=1e-9)
    assert pool.factor == pytest.approx(factor_by_search(Q1.cdfs.mean(axis=0), [0.42]), rel=2e-5)
    assert pool.factor > 1.05  # refit: not the 1 it started from
    pool.learn([Q2])
    assert pool.records.known() == pytest.approx(records_by_hand(Q1, Q2), rel=1e-9)  # on two questions: accumulated


def test_aggregate_weighs_by_the_records_learnt_before_and_extremizes_by_the_factor():
    pool = learnt.LearntPool()
    pool.learn([Q1])
    cdfs = np.vstack([valid_cdf(0.5, 0.1), valid_cdf(0.55, 0.05), valid_cdf(0.45, 0.2)])
    question = Question("q3", 0.5, np.array(["good", "bad", "new"]), cdfs)
    expected = extremized(pooled_by_hand(question, records_by_hand(Q1)), pool.factor)
    # still valid after extremizing (tails above 0.001, steps above the minimum): standardising only rounds it
    np.testing.assert_allclose(pool.aggregate(question), expected, atol=1e-9)


def test_the_factor_learns_from_each_pool_as_it_was_aggregated_out_of_sample():
    pool = learnt.LearntPool()
    pool.aggregate(Q1)
    pool.aggregate(Q2)  # before anything resolved: the equal-weight pool, remembered
    pool.learn([Q1])
    pool.learn([Q2])  # not the pool Q2 would get now, weighted by Q1's records
    out_of_sample = factor_by_search(np.vstack([Q1.cdfs.mean(axis=0), Q2.cdfs.mean(axis=0)]), [0.42, 0.63])
    recomputed = factor_by_search(
        np.vstack([Q1.cdfs.mean(axis=0), pooled_by_hand(Q2, records_by_hand(Q1))]), [0.42, 0.63]
    )
    assert abs(out_of_sample / recomputed - 1) > 0.03
    assert pool.factor == pytest.approx(out_of_sample, rel=2e-5)


def test_a_question_never_aggregated_is_pooled_before_its_own_outcome_enters_the_records():
    one_by_one = learnt.LearntPool()
    one_by_one.learn([Q1])
    one_by_one.learn([Q2])  # Q2 pooled with Q1's records only
    pools = np.vstack([Q1.cdfs.mean(axis=0), pooled_by_hand(Q2, records_by_hand(Q1))])
    assert one_by_one.factor == pytest.approx(factor_by_search(pools, [0.42, 0.63]), rel=2e-5)
    together = learnt.LearntPool()
    together.learn([Q1, Q2])  # both pooled with what was known before this batch: nothing
    pools = np.vstack([Q1.cdfs.mean(axis=0), Q2.cdfs.mean(axis=0)])
    assert together.factor == pytest.approx(factor_by_search(pools, [0.42, 0.63]), rel=2e-5)
    assert together.records.known() == pytest.approx(records_by_hand(Q1, Q2), rel=1e-9)


def test_a_remembered_pool_is_used_once():
    pool = learnt.LearntPool()
    pool.aggregate(Q1)
    pool.learn([Q1])
    pool.learn([Q1])  # learnt again (same id, no new aggregate): pooled afresh with the records, not the stale pool
    pools = np.vstack([Q1.cdfs.mean(axis=0), pooled_by_hand(Q1, records_by_hand(Q1))])
    assert pool.factor == pytest.approx(factor_by_search(pools, [0.42, 0.42]), rel=2e-5)


def test_learn_refuses_a_one_shot_iterator_rather_than_learning_nothing():
    # learn reads its questions twice (their pools first, then their outcomes): a generator would be empty the second
    # time, and the questions silently not learnt
    pool = learnt.LearntPool()
    with pytest.raises(ValueError, match=r"^zip\(\) argument 2 is longer than argument 1$"):
        pool.learn(q for q in [Q1, Q2])
