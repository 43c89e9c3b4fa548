"""The evaluation of numeric and date questions: the flat format detected, read and cleaned, the scores by
hand, the causal rules (nothing resolved at or after a question's end reaches its aggregate), the learnt
pool on synthetic crowds of known skill, and the command end to end. No database: synthetic data only."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from scipy.stats import norm

from forecasting import evaluation
from forecasting.continuous import learnt as numeric_learnt
from forecasting.continuous.build import standardise
from forecasting.continuous.grid import Scale
from forecasting.evaluation import numeric
from tests.forecasting.evaluation.helpers import EPOCH, day, write_csv

COLUMNS = [
    "question_id",
    "forecaster_id",
    "made_at",
    "cdf",
    "range_min",
    "range_max",
    "open_lower_bound",
    "open_upper_bound",
    "zero_point",
    "question_type",
    "outcome",
    "resolved_at",
    "closes_at",
]
U = np.linspace(0.0, 1.0, 201)
H = 1.0 / 200  # the grid's step


def line(below, inside):
    """The CDF ``below + inside * u``: ``below`` under the range, uniform density ``inside`` in it."""
    return below + inside * U


def row(qid, who, made, cdf, outcome="50", resolved=20, closes=10, low="0", high="100", lower="true", upper="true"):
    cdf_text = cdf if isinstance(cdf, str) else json.dumps(np.round(cdf, 10).tolist())
    return [qid, who, day(made), cdf_text, low, high, lower, upper, "", "numeric", outcome, day(resolved), day(closes)]


def frame_of(rows, columns=COLUMNS):
    return pd.DataFrame(rows, columns=columns).astype(str)


def hand_crps(below, inside, y=0.5):
    """CRPS of ``line(below, inside)`` at y = 0.5 by hand: the exact integral of the two quadratics,
    ((c + s/2)^3 - c^3) / 3s each side by symmetry of the terms, plus the trapezoid rule's error on a
    quadratic f, h^2/12 (f'(b) - f'(a)) = h^2 s^2 / 12 on each side."""
    assert y == 0.5
    c, s = below, inside
    left = ((c + s / 2) ** 3 - c**3) / (3 * s)
    right = ((1 - c - s / 2) ** 3 - (1 - c - s) ** 3) / (3 * s)
    return left + right + 2 * H**2 * s**2 / 12


# --- the format -------------------------------------------------------------------------------------


def test_the_format_is_detected_from_the_header():
    assert numeric.is_numeric(frame_of([row("q", "a", 1, line(0.1, 0.8))]))
    yes_no = pd.DataFrame(columns=["question_id", "forecaster_id", "made_at", "probability", "outcome", "resolved_at"])
    multiple = pd.DataFrame(columns=["question_id", "options", "probabilities", "outcome"])
    assert not numeric.is_numeric(yes_no) and not numeric.is_numeric(multiple)


def test_a_missing_column_is_named():
    frame = frame_of([row("q", "a", 1, line(0.1, 0.8))]).drop(columns=["range_max"])
    with pytest.raises(evaluation.MissingColumnsError, match="range_max"):
        numeric.clean_numeric(frame)


def test_bad_rows_are_dropped_and_counted():
    good = line(0.1, 0.8)
    rows = [
        row("q", "a", 1, good),
        row("q", "b", 2, good[:-1]),  # 200 values
        row("q", "c", 2, good[::-1]),  # decreasing
        row("q", "d", 2, line(0.1, 1.0)),  # above 1
        row("q", "e", 2, "not json"),
        row("q", "f", 2, good, low="100", high="0"),  # an empty range
        row("q", "g", 2, good, lower="maybe"),
        row("q", "h", 2, good, outcome="lots"),
        row("q", "i", 2, line(0.0, 0.9), outcome="below_lower_bound", lower="false"),  # ruled out by the bound
        row("q", "j", 11, good),  # after the close
        row("q", "k", 21, good, closes=30),  # after the resolution
        [
            "q",
            "l",
            "yesterday",
            json.dumps(good.tolist()),
            "0",
            "100",
            "true",
            "true",
            "",
            "numeric",
            "50",
            day(20),
            "",
        ],
    ]
    clean, dropped = numeric.clean_numeric(frame_of(rows))
    assert list(clean["forecaster_id"]) == ["a"]
    assert dropped == {
        "unparsable_date": 1,
        "bad_scale": 2,
        "bad_cdf": 4,
        "bad_outcome": 2,
        "made_after_resolution": 1,
        "made_after_close": 1,
        "inconsistent_question": 0,
    }
    assert tuple(dropped) == numeric.DROP_REASONS


def test_a_question_whose_rows_disagree_is_dropped_whole():
    rows = [row("r", "a", 1, line(0.1, 0.8)), row("r", "b", 1, line(0.1, 0.8), high="200")]
    rows += [row("o", "a", 1, line(0.1, 0.8)), row("o", "b", 1, line(0.1, 0.8), outcome="60")]
    rows += [row("ok", "a", 1, line(0.1, 0.8)), row("ok", "b", 1, line(0.1, 0.8), high="100.0")]  # the same range
    clean, dropped = numeric.clean_numeric(frame_of(rows))
    assert dropped["inconsistent_question"] == 4 and set(clean["question_id"]) == {"ok"}


def test_date_questions_read_iso_dates_as_epoch_seconds():
    rows = [
        [
            "d",
            who,
            day(1),
            json.dumps(line(0.1, 0.8).tolist()),
            day(0),
            day(10),
            "true",
            "true",
            "",
            "date",
            "2020-01-03T12:00:00Z",
            day(20),
            day(10),
        ]
        for who in "ab"
    ]
    (question,) = numeric.build_numeric_questions(numeric.clean_numeric(frame_of(rows))[0])
    assert question.scale.range_min == EPOCH.timestamp() and question.scale.range_max == EPOCH.timestamp() + 10 * 86400
    assert question.position == pytest.approx(0.25)
    rows = [[*r[:10], "above_upper_bound", *r[11:]] for r in rows]
    (question,) = numeric.build_numeric_questions(numeric.clean_numeric(frame_of(rows))[0])
    assert question.position == math.inf


def test_each_forecasters_latest_forecast_oldest_first():
    rows = [
        row("q", "a", 1, line(0.4, 0.2)),
        row("q", "b", 2, line(0.0, 1.0)),
        row("q", "a", 3, line(0.2, 0.6)),  # replaces a's first
        row("q", "c", 3, line(0.3, 0.4)),  # same instant: file order
    ]
    (question,) = numeric.build_numeric_questions(numeric.clean_numeric(frame_of(rows))[0])
    assert list(question.forecaster_ids) == ["b", "a", "c"]
    np.testing.assert_allclose(question.cdfs[1], line(0.2, 0.6))


# --- scores by hand -----------------------------------------------------------------------------------


def test_scores_by_hand_on_the_latest_forecasts():
    rows = [
        row("q", "a", 1, line(0.45, 0.1)),  # replaced by a's later forecast
        row("q", "b", 2, line(0.0, 1.0)),
        row("q", "a", 3, line(0.2, 0.6)),
    ]
    result = numeric.evaluate_numeric(frame_of(rows), min_forecasters=2, keep_predictions=True)
    assert result["questions"] == 1 and result["question_type"] == "numeric" and result["causal"] is True
    # the pool of 0.2 + 0.6u and u is 0.1 + 0.8u; two forecasters: the recency weights are equal
    for name in ("linear_pool", "recency_weighted_mean", "learnt_pool"):
        assert result["methods"][name]["crps"] == pytest.approx(hand_crps(0.1, 0.8), abs=1e-9)
        assert result["methods"][name]["log"] == pytest.approx(math.log(0.8), abs=1e-9)  # ln(200 * 0.8 / 200)
    assert hand_crps(0.1, 0.8) == pytest.approx(0.124 / 1.2 + 0.64 * H**2 / 6)
    assert result["individual"]["crps"] == pytest.approx((hand_crps(0.2, 0.6) + hand_crps(0.0, 1.0)) / 2)
    assert result["individual"]["log"] == pytest.approx((math.log(0.6) + 0.0) / 2)
    (prediction,) = result["predictions"]
    assert (
        prediction["position"] == 0.5 and prediction["crps"]["linear_pool"] == result["methods"]["linear_pool"]["crps"]
    )


def test_an_outcome_beyond_an_open_bound_scores_the_tail():
    rows = [row("q", w, 1, line(0.1, 0.8), outcome="above_upper_bound") for w in "ab"]
    result = numeric.evaluate_numeric(frame_of(rows), min_forecasters=2, methods=["linear_pool"])
    # the position is clipped to 1: CRPS = integral of (0.1 + 0.8u)^2 plus the trapezoid's error on a
    # quadratic, except that at the last grid point the step has reached 1: (0.9 - 1)^2 there, not 0.9^2
    trapezoid = (0.9**3 - 0.1**3) / 2.4 + H**2 / 12 * 1.6 * 0.8
    by_hand = trapezoid - H * (0.9**2 - 0.1**2) / 2
    assert result["methods"]["linear_pool"]["crps"] == pytest.approx(by_hand, abs=1e-12)
    assert result["methods"]["linear_pool"]["log"] == pytest.approx(math.log(0.1))


def test_recency_weights_favour_the_newest_forecasters():
    cdfs = [line(0.0, 1.0), line(0.2, 0.6), line(0.1, 0.8)]
    rows = [row("q", w, i, c) for i, (w, c) in enumerate(zip("abc", cdfs, strict=True))]
    result = numeric.evaluate_numeric(frame_of(rows), min_forecasters=3, keep_predictions=True)
    w = np.exp(np.sqrt([1.0, 2.0, 3.0]) - math.sqrt(3.0))
    expected = (w / w.sum()) @ np.array(cdfs)
    np.testing.assert_allclose(result["predictions"][0]["cdf"]["recency_weighted_mean"], expected, atol=1e-12)


def test_since_scores_only_the_questions_resolved_from_that_date():
    rows = [row("early", w, 1, line(0.1, 0.8), resolved=20) for w in "ab"]
    rows += [row("late", w, 1, line(0.0, 1.0), resolved=40) for w in "ab"]
    result = numeric.evaluate_numeric(frame_of(rows), min_forecasters=2, since=day(30)[:10], methods=["linear_pool"])
    assert result["questions"] == 1 and result["methods"]["linear_pool"]["crps"] == pytest.approx(hand_crps(0.0, 1.0))


def test_unknown_methods_are_refused():
    with pytest.raises(ValueError, match=r"unknown method.*bayes.*known: linear_pool"):
        numeric.resolve_numeric_methods(["bayes"])


# --- synthetic crowds -----------------------------------------------------------------------------------

SCALE = Scale(0.0, 100.0, open_lower=True, open_upper=True)


def crowd(n_questions, noise, *, spread=None, tau=0.08, seed=0):
    """Questions opening every 10 days for 8 days and resolving 2.25 to 29.25 days after their close (so
    later questions are open while earlier ones resolve; closes fall on whole days, resolutions a quarter
    past). Truth y = m + N(0, tau) on the unit range; forecaster
    i sees m + N(0, noise_i) and forecasts a normal with sd ``spread_i`` (calibrated by default:
    sqrt(tau^2 + noise_i^2)), at a random time while the question is open."""
    rng = np.random.default_rng(seed)
    noise = np.asarray(noise, dtype=float)
    spread = np.hypot(tau, noise) if spread is None else np.asarray(spread, dtype=float)
    rows = []
    for q in range(n_questions):
        m = rng.uniform(0.3, 0.7)
        y = m + rng.normal(0.0, tau)
        opens, closes = 10.0 * q, 10.0 * q + 8.0
        resolves = closes + rng.integers(2, 30) + 0.25
        times = np.sort(rng.uniform(opens, closes, len(noise)))
        for made, i in zip(times, rng.permutation(len(noise)), strict=True):
            cdf = standardise(norm.cdf(U, m + rng.normal(0.0, noise[i]), spread[i]), SCALE)
            rows.append(row(f"q{q:03d}", f"f{i}", made, cdf, repr(100 * y), resolves, closes))
    return frame_of(rows)


def predictions(result, key="cdf"):
    return {p["question_id"]: {k: np.asarray(v) for k, v in p[key].items()} for p in result["predictions"]}


def evaluate(frame, **options):
    options.setdefault("min_forecasters", 3)
    return numeric.evaluate_numeric(frame, keep_predictions=True, **options)


SKILLS = [0.01, 0.02, 0.04, 0.08, 0.12, 0.16, 0.2, 0.25]
FAST = ["linear_pool", "recency_weighted_mean", "learnt_pool"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_learnt_pool_beats_the_recency_weighted_mean_when_skill_varies(seed):
    result = evaluate(crowd(60, SKILLS, seed=seed), methods=FAST)["methods"]
    assert result["learnt_pool"]["crps"] < 0.9 * result["recency_weighted_mean"]["crps"]
    assert result["learnt_pool"]["crps"] < 0.9 * result["linear_pool"]["crps"]
    assert result["learnt_pool"]["log"] > result["recency_weighted_mean"]["log"]


def test_the_learnt_pool_does_not_lose_when_all_are_equal():
    for spread in (None, [0.04] * 8):  # calibrated, and over-confident
        scores = [evaluate(crowd(60, [0.05] * 8, spread=spread, seed=s), methods=FAST)["methods"] for s in range(3)]
        learnt = np.mean([r["learnt_pool"]["crps"] for r in scores])
        assert learnt <= np.mean([r["recency_weighted_mean"]["crps"] for r in scores])
        assert learnt <= 1.01 * np.mean([r["linear_pool"]["crps"] for r in scores])


def test_the_learnt_pool_learns_who_is_skilled_and_that_the_pool_is_too_wide():
    learner = numeric_learnt.LearntPool()
    questions = numeric.build_numeric_questions(numeric.clean_numeric(crowd(40, SKILLS))[0])
    for q in questions:
        learner.aggregate(q)
        learner.learn([q])
    weights = learner.records.weights([f"f{i}" for i in range(len(SKILLS))])
    assert weights[:3].min() > weights[3] > weights[4] > weights[5:].max()  # the less noise, the more weight
    assert learner.factor > 1.0  # a pool of forecasters who disagree is wider than the truth


def test_with_nothing_learnt_the_learnt_pool_is_the_linear_pool():
    questions = numeric.build_numeric_questions(numeric.clean_numeric(crowd(1, SKILLS))[0])
    cdfs = questions[0].cdfs
    np.testing.assert_allclose(numeric_learnt.LearntPool().aggregate(questions[0]), cdfs.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(numeric_learnt.learnt_pool(cdfs, SCALE), cdfs.mean(axis=0), atol=1e-9)
    assert numeric_learnt.fit_dispersion(np.zeros((0, 201)), np.zeros(0)) == 1.0


# --- causal --------------------------------------------------------------------------------------------------


def test_resolution_dates_between_instants_change_nothing():
    frame = crowd(30, SKILLS, seed=3)
    # every question resolves half a day later: no close falls in between, so nothing learnt may move
    later = frame.assign(
        resolved_at=[
            day((pd.Timestamp(r) - pd.Timestamp(EPOCH)).total_seconds() / 86400 + 0.5) for r in frame.resolved_at
        ]
    )
    first, second = evaluate(frame, methods=FAST), evaluate(later, methods=FAST)
    assert first["methods"] == second["methods"]
    for q, cdfs in predictions(first).items():
        for name, cdf in cdfs.items():
            np.testing.assert_array_equal(cdf, predictions(second)[q][name])
    assert first["causal"] is True and first["causal_rule"] == evaluation.CAUSAL_RULE
    assert "strictly before" in first["causal_rule"]


def test_an_outcome_reaches_only_questions_ending_after_it_resolved():
    frame = crowd(30, SKILLS, seed=4)
    moved = "q012"
    changed_frame = frame.assign(outcome=np.where(frame.question_id == moved, "99", frame.outcome))
    before, after = predictions(evaluate(frame, methods=FAST)), predictions(evaluate(changed_frame, methods=FAST))
    questions = {q.question_id: q for q in numeric.build_numeric_questions(numeric.clean_numeric(frame)[0])}
    changed = [q for q in before if not np.array_equal(before[q]["learnt_pool"], after[q]["learnt_pool"])]
    # the learner learns (some aggregates move), but only where the question ended after the outcome was known
    assert changed and all(questions[q].ends_at > questions[moved].resolved_at for q in changed)
    np.testing.assert_array_equal(before[moved]["learnt_pool"], after[moved]["learnt_pool"])
    for q in before:  # the simple methods learn nothing
        np.testing.assert_array_equal(before[q]["linear_pool"], after[q]["linear_pool"])


@pytest.mark.parametrize("refit_every", [0.0, 30.0])
def test_each_aggregate_uses_only_questions_resolved_strictly_before_its_end(monkeypatch, refit_every):
    seen = []

    class Spy(numeric_learnt.LearntPool):
        known = -math.inf

        def learn(self, resolved):
            self.known = max([self.known, *(q.resolved_at for q in resolved)])
            super().learn(resolved)

        def aggregate(self, question):
            seen.append((question.question_id, self.known, question.ends_at))
            return super().aggregate(question)

    monkeypatch.setitem(numeric.LEARNERS, "learnt_pool", Spy)
    frame = crowd(25, SKILLS, seed=1)
    result = evaluate(frame, methods=["learnt_pool"], refit_every_days=refit_every)
    assert len(seen) == 25 and len({q for q, _, _ in seen}) == 25  # each question once, at its end
    assert sum(math.isfinite(known) for _, known, _ in seen) > 15  # it did learn
    assert all(known < end for _, known, end in seen)
    resolutions = np.array([pd.Timestamp(r).timestamp() for r in frame.resolved_at.unique()])
    assert result["refits"] == len(evaluation.refit_times(resolutions, refit_every))
    assert len(evaluation.refit_times(resolutions, 30)) < len(resolutions)  # grouped refits are fewer


def test_a_question_resolved_at_the_instant_another_closes_is_not_yet_known(monkeypatch):
    known = {}

    class Spy(numeric_learnt.LearntPool):
        def aggregate(self, question):
            known[question.question_id] = len(self._learnt_positions)
            return super().aggregate(question)

    monkeypatch.setitem(numeric.LEARNERS, "learnt_pool", Spy)
    rows = [row("first", w, 1, line(0.1, 0.8), resolved=10, closes=5) for w in "ab"]
    rows += [row("second", w, 6, line(0.2, 0.6), resolved=30, closes=10) for w in "ab"]  # closes as "first" resolves
    rows += [row("third", w, 6, line(0.2, 0.6), resolved=30, closes=11) for w in "ab"]
    evaluate(frame_of(rows), methods=["learnt_pool"], min_forecasters=2)
    assert known == {"first": 0, "second": 0, "third": 1}


def test_a_close_after_the_resolution_ends_the_question_at_the_resolution():
    rows = [row("q", w, 1, line(0.1, 0.8), resolved=20, closes=300) for w in "ab"]
    (question,) = numeric.build_numeric_questions(numeric.clean_numeric(frame_of(rows))[0])
    assert question.ends_at == pd.Timestamp(day(20)).timestamp()


# --- the command --------------------------------------------------------------------------------------------


def hand_file(tmp_path, **rows_options):
    rows = [
        row("q", "a", 1, line(0.45, 0.1), **rows_options),
        row("q", "b", 2, line(0.0, 1.0), **rows_options),
        row("q", "a", 3, line(0.2, 0.6), **rows_options),
        row("q", "late", 12, line(0.5, 0.0), **rows_options),  # after the close: dropped
    ]
    return write_csv(tmp_path / "numeric.csv.gz", rows, columns=COLUMNS, compress=True)


def test_command_scores_a_gzipped_numeric_file(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "evaluate_aggregators", str(hand_file(tmp_path)), "--json", "--min-forecasters", "2", stdout=out, stderr=err
    )
    result = json.loads(out.getvalue())
    assert result["question_type"] == "numeric" and result["causal"] is True
    assert result["causal_rule"] == evaluation.CAUSAL_RULE and result["questions"] == 1
    assert set(result["methods"]) == set(numeric.METHODS)
    for name in ("linear_pool", "recency_weighted_mean", "learnt_pool"):
        assert result["methods"][name]["crps"] == pytest.approx(hand_crps(0.1, 0.8), abs=1e-9)
    assert "3 forecasts kept, 1 dropped (made_after_close: 1)" in err.getvalue() and "%" not in err.getvalue()


def test_command_prints_a_table(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "evaluate_aggregators",
        str(hand_file(tmp_path)),
        "--min-forecasters",
        "2",
        "--methods",
        "linear_pool,learnt_pool",
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert "learnt_pool" in text and "crps" in text and "causal walk-forward" in text and "questions: 1" in text
    assert f"{hand_crps(0.1, 0.8):.6f}" in text and "quantile_average" not in text
    assert "100%" in err.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--time-averaged"], "--time-averaged and --plots are for yes/no files only"),
        (["--plots", "pictures"], "--time-averaged and --plots are for yes/no files only"),
        (["--methods", "bayes"], "unknown method"),
    ],
)
def test_command_refuses_what_numeric_files_do_not_support(tmp_path, options, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "evaluate_aggregators", str(hand_file(tmp_path)), *options, stdout=io.StringIO(), stderr=io.StringIO()
        )
