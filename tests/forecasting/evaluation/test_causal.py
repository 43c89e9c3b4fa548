"""The evaluation is causal by construction: nothing a reader could not have seen while a question
was open (a later forecast, its outcome, its resolution date, a question resolved after the instant)
reaches any aggregate it scores."""

import io
import json
import math
from datetime import datetime

import numpy as np
import pytest
from django.core.management import call_command

from forecasting import aggregation, evaluation
from tests.forecasting.evaluation.helpers import COLUMNS, EPOCH, day, write_csv

CLOSE_COLUMNS = [*COLUMNS, "closes_at"]
LEARNING = ["extremized_logodds", "skill_weighted_logodds", "bayes_model", "bayes", "logodds_mean"]


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _days(stamp: str) -> float:
    return (_epoch(stamp) - EPOCH.timestamp()) / 86400


def question(qid, outcome, close_day, resolved_day, forecasts):
    """forecasts: (forecaster, made_day, probability)."""
    return [[qid, who, day(made), p, outcome, day(resolved_day), day(close_day)] for who, made, p in forecasts]


def crowd(n_questions, *, seed=0, gap=10.0, lag=5.0):
    """Questions closing every ``gap`` days and resolving ``lag`` days after their close, each with
    five recurring forecasters of different skill."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_questions):
        outcome = int(rng.random() < 0.5)
        opens, closes = i * gap, i * gap + 8.0
        forecasts = []
        for j, skill in enumerate([0.35, 0.25, 0.15, 0.05, 0.0]):
            p = 0.5 + (skill if outcome else -skill) + rng.normal(0, 0.08)
            forecasts.append((f"f{j}", opens + 1 + j, float(np.clip(p, 0.02, 0.98))))
        rows += question(f"q{i:03d}", outcome, closes, closes + lag, forecasts)
    return rows


def evaluate(tmp_path, rows, **options):
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=CLOSE_COLUMNS))
    options.setdefault("min_forecasters", 3)
    return evaluation.evaluate(frame, keep_predictions=True, **options)


def predictions(result):
    return {row["question_id"]: row["p_yes"] for row in result["predictions"]}


def test_resolution_dates_do_not_move_any_aggregate(tmp_path):
    rows = crowd(30)
    # every question resolves half a day later: no forecast or close falls in between, so nothing a
    # reader saw changes, and no aggregate may (a lead time read from the resolution would)
    later = [[*row[:5], day(_days(row[5]) + 0.5), row[6]] for row in rows]
    first = evaluate(tmp_path, rows, methods=LEARNING, time_averaged=True)
    second = evaluate(tmp_path, later, methods=LEARNING, time_averaged=True)
    assert predictions(first) == predictions(second)
    assert first["methods"] == second["methods"]
    assert first["causal"] is True
    assert "close" in first["causal_rule"] and "strictly before" in first["causal_rule"]


def test_lead_times_run_to_the_close_not_the_resolution(tmp_path, monkeypatch):
    seen = []

    def spy(training):
        def hook(history):
            seen.append((history.question_id, history.clock_at))
            return aggregation.mean(history.probabilities)

        return {"__aggregate__": hook}

    monkeypatch.setitem(evaluation.LEARNERS, "mean", spy)
    rows = question("q", 1, 10, 40, [("a", 1, 0.6), ("b", 2, 0.7), ("c", 3, 0.8)])
    evaluate(tmp_path, rows, methods=["mean"], time_averaged=True)
    close = _epoch(day(10))
    assert seen and all(clock == close for _, clock in seen)


def test_without_a_close_the_clock_is_the_newest_forecast_so_far(tmp_path, monkeypatch):
    seen = []

    def spy(training):
        def hook(history):
            seen.append(history.clock_at)
            return aggregation.mean(history.probabilities)

        return {"__aggregate__": hook}

    monkeypatch.setitem(evaluation.LEARNERS, "mean", spy)
    rows = [r[:6] for r in question("q", 1, 10, 40, [("a", 1, 0.6), ("b", 2, 0.7), ("c", 3, 0.8)])]
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    evaluation.evaluate(frame, min_forecasters=3, methods=["mean"], time_averaged=True)
    # the final aggregate, then one per forecast: never day 40 (the resolution)
    assert sorted(seen) == sorted([_epoch(day(3)), _epoch(day(1)), _epoch(day(2)), _epoch(day(3))])


def test_outcomes_do_not_leak_into_their_own_or_earlier_aggregates(tmp_path):
    rows = crowd(40, seed=3)
    flipped_id = "q020"
    flipped = [[*r[:4], 1 - r[4], *r[5:]] if r[0] == flipped_id else r for r in rows]
    before = predictions(evaluate(tmp_path, rows, methods=LEARNING))
    after = predictions(evaluate(tmp_path, flipped, methods=LEARNING))
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=CLOSE_COLUMNS))
    ends = {h.question_id: h.ends_at for h in evaluation.build_histories(frame)}
    resolved = {h.question_id: h.resolved_at for h in evaluation.build_histories(frame)}
    changed = [q for q in before if before[q] != after[q]]
    # only questions ending after the flipped one resolved may change, and some do (the learners learn)
    assert changed and all(ends[q] > resolved[flipped_id] for q in changed)
    assert before[flipped_id] == after[flipped_id]


def test_forecasts_after_the_close_are_dropped_and_counted(tmp_path):
    rows = question("q", 1, 10, 40, [("a", 1, 0.6), ("b", 2, 0.7), ("c", 3, 0.8)])
    rows += question("q", 1, 10, 40, [("late", 12, 1.0), ("a", 11, 0.99)])
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=CLOSE_COLUMNS))
    assert dropped["made_after_close"] == 2 and dropped["made_after_resolution"] == 0
    result = evaluation.evaluate(frame, min_forecasters=3, methods=["mean"])
    assert result["methods"]["mean"]["brier"] == pytest.approx((0.7 - 1) ** 2)


def test_a_forecast_exactly_at_the_close_counts(tmp_path):
    rows = question("q", 0, 10, 40, [("a", 1, 0.6), ("b", 10, 0.2)])
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=CLOSE_COLUMNS))
    assert dropped["made_after_close"] == 0 and len(frame) == 2


@pytest.mark.parametrize(
    "close",
    ["3008-01-01T00:00:00Z", "0139-06-01T00:00:00Z", "2019-12-31T00:00:00Z", "not a date", ""],
    ids=["year-3008", "year-0139", "before-first-forecast", "unparsable", "empty"],
)
def test_an_implausible_close_counts_as_unknown(tmp_path, close):
    rows = question("q", 1, 10, 40, [("a", 1, 0.6), ("b", 2, 0.7), ("c", 3, 0.8)])
    rows = [[*r[:6], close] for r in rows]
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=CLOSE_COLUMNS))
    assert len(frame) == 3 and sum(dropped.values()) == 0
    assert evaluation.questions_without_close(frame) == 1
    (history,) = evaluation.build_histories(frame)
    assert math.isnan(history.closes_at)
    assert history.clock_at == _epoch(day(3)) and history.ends_at == _epoch(day(40))


def test_a_close_after_the_resolution_is_kept_and_the_life_ends_at_the_resolution(tmp_path):
    rows = question("q", 1, 300, 40, [("a", 1, 0.6), ("b", 2, 0.7)])
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=CLOSE_COLUMNS))
    (history,) = evaluation.build_histories(frame)
    assert history.clock_at == _epoch(day(300)) and history.ends_at == _epoch(day(40))


def test_each_aggregate_uses_fits_from_questions_resolved_before_its_instant(tmp_path, monkeypatch):
    rows = crowd(25, seed=1, gap=3.0, lag=12.0)  # resolutions overlap later questions' lives
    checks = []

    def spy(training):
        latest = max((h.resolved_at for h in training), default=-math.inf)

        def hook(history):
            newest = float(history.all_forecasts.made_at[-1])
            checks.append((history.question_id, latest, newest, history.ends_at))
            return aggregation.median(history.probabilities)

        return {"__aggregate__": hook}

    monkeypatch.setitem(evaluation.LEARNERS, "median", spy)
    evaluate(tmp_path, rows, methods=["median"], time_averaged=True)
    assert len(checks) > 25 * 2
    # a fit in effect at a forecast's instant only knows questions resolved strictly before it (the
    # only aggregate that may know more is each question's final one, taken at its close) ...
    after_newest = [q for q, latest, newest, _ in checks if latest >= newest]
    assert after_newest and len(after_newest) == len(set(after_newest))
    # ... and the final aggregate's fit only those resolved before the question's close
    assert all(latest < end for _, latest, _, end in checks)


def test_time_averaged_scores_use_the_fit_in_effect_at_each_forecast(tmp_path, monkeypatch):
    # q1 resolves on day 5, while q2 is open (day 0 to day 10): q2's forecasts before day 5 use
    # the defaults, those after use the fit that learnt q1
    rows = question("q1", 1, 4, 5, [("a", 0, 0.9), ("b", 1, 0.9)])
    rows += question("q2", 1, 10, 12, [("a", 2, 0.4), ("b", 6, 0.6), ("c", 8, 0.8)])
    used = []

    def spy(training):
        ids = tuple(h.question_id for h in training)

        def hook(history):
            if history.question_id == "q2":
                used.append((history.all_forecasts.made_at[-1], ids))
            return aggregation.mean(history.probabilities)

        return {"__aggregate__": hook}

    monkeypatch.setitem(evaluation.LEARNERS, "mean", spy)
    evaluate(tmp_path, rows, methods=["mean"], time_averaged=True, min_forecasters=2)
    by_instant = sorted(used)
    assert [ids for _, ids in by_instant] == [(), ("q1",), ("q1",), ("q1",)]  # day 2, day 6, day 8, final


def test_refit_times_every_resolution_or_grouped():
    days = np.array([0.0, 0.0, 1.0, 2.0, 40.0, 41.0]) * 86400
    np.testing.assert_array_equal(evaluation.refit_times(days, 0), np.unique(days))
    np.testing.assert_array_equal(evaluation.refit_times(days, 30), np.array([0.0, 40.0]) * 86400)
    assert evaluation.fit_index(np.array([10.0, 20.0]), 10.0) == -1  # a fit made at the instant is not yet known
    assert evaluation.fit_index(np.array([10.0, 20.0]), 10.5) == 0
    assert evaluation.fit_index(np.array([10.0, 20.0]), 99.0) == 1


def test_bayes_with_nothing_learnt_is_the_logodds_mean(tmp_path):
    rows = question("q", 1, 10, 40, [("a", 1, 0.9), ("b", 2, 0.85), ("c", 3, 0.95), ("d", 4, 0.8)])
    result = evaluate(tmp_path, rows, methods=["bayes", "logodds_mean", "bayes_model"])
    (row,) = result["predictions"]
    assert row["p_yes"]["bayes"] == pytest.approx(row["p_yes"]["logodds_mean"], abs=1e-12)
    # the model alone, from its prior, is pulled towards 50%: the stack is not the model
    assert abs(row["p_yes"]["bayes_model"] - 0.5) < abs(row["p_yes"]["logodds_mean"] - 0.5)


@pytest.mark.django_db
def test_command_says_it_is_causal_and_shows_progress_unless_json(tmp_path):
    path = write_csv(tmp_path / "f.csv", crowd(6), columns=CLOSE_COLUMNS)
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate_aggregators", str(path), "--json", "--methods", "median", stdout=out, stderr=err)
    result = json.loads(out.getvalue())
    assert result["causal"] is True and result["causal_rule"] == evaluation.CAUSAL_RULE
    assert "%" not in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate_aggregators", str(path), "--methods", "extremized_logodds", stdout=out, stderr=err)
    assert "100%" in err.getvalue()
    assert "causal" in out.getvalue()


@pytest.mark.django_db
def test_command_writes_the_plots(tmp_path):
    path = write_csv(tmp_path / "f.csv", crowd(12), columns=CLOSE_COLUMNS)
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "evaluate_aggregators",
        str(path),
        "--json",
        "--methods",
        "median,mean",
        "--plots",
        str(tmp_path / "p"),
        stdout=out,
        stderr=err,
    )
    assert "predictions" not in json.loads(out.getvalue())
    for name in ("calibration.png", "brier_over_time.png"):
        data = (tmp_path / "p" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
