"""The walk-forward evaluation (forecasting/evaluation/): reading and cleaning the benchmark CSV, the
protocol's scores and refits, the table, and the ``evaluate_aggregators`` command."""

import io
import json
import math
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from forecasting import aggregation, evaluation
from tests.forecasting.evaluation.helpers import COLUMNS, EPOCH, day, evaluate_rows, rows_for, write_csv


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate_aggregators", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def simple_question(question, outcome, resolved_day, probabilities, start_day=0):
    return rows_for(
        question, outcome, resolved_day, [(f"u{i}", start_day + i * 0.01, p) for i, p in enumerate(probabilities)]
    )


# --- loading and cleaning ------------------------------------------------------------------------


def test_forecasts_after_resolution_are_dropped(tmp_path):
    rows = simple_question("q", 1, 10, [0.2, 0.6, 0.7])
    rows += rows_for("q", 1, 10, [("late", 11, 0.0), ("u0", 12, 1.0)])
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    assert dropped["made_after_resolution"] == 2
    assert len(frame) == 3
    result = evaluation.evaluate(frame, min_forecasters=3, methods=["median"])
    assert result["questions"] == 1
    assert result["methods"]["median"]["brier"] == pytest.approx((0.6 - 1) ** 2)
    # with the late forecasters it would have 4 forecasters: it does not count with 4 required
    assert evaluation.evaluate(frame, min_forecasters=4, methods=["median"])["questions"] == 0


def test_forecast_made_exactly_at_resolution_is_kept(tmp_path):
    rows = rows_for("q", 0, 5, [("a", 1, 0.5), ("b", 5, 0.1)])
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    assert dropped["made_after_resolution"] == 0
    assert len(frame) == 2


def test_invalid_rows_are_dropped_and_counted(tmp_path):
    rows = simple_question("q", 1, 10, [0.2, 0.6, 0.7])
    rows += [
        ["q", "x1", "not a date", 0.5, 1, day(10)],
        ["q", "x2", day(1), 0.5, 1, ""],
        ["q", "x3", day(1), "nan", 1, day(10)],
        ["q", "x4", day(1), 1.5, 1, day(10)],
        ["q", "x5", day(1), "abc", 1, day(10)],
        ["q", "x6", day(1), 0.5, 2, day(10)],
        ["q", "x7", day(1), 0.5, "yes", day(10)],
    ]
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    assert dropped == {
        "unparsable_date": 2,
        "bad_probability": 3,
        "bad_outcome": 2,
        "made_after_resolution": 0,
        "made_after_close": 0,
        "inconsistent_question": 0,
    }
    assert sorted(frame["forecaster_id"]) == ["u0", "u1", "u2"]


def test_question_with_conflicting_outcomes_is_dropped(tmp_path):
    rows = simple_question("good", 1, 10, [0.5, 0.5])
    rows += rows_for("bad", 1, 10, [("a", 1, 0.5)]) + rows_for("bad", 0, 10, [("b", 1, 0.5)])
    frame, dropped = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    assert dropped["inconsistent_question"] == 2
    assert set(frame["question_id"]) == {"good"}


def test_gzip_is_detected_by_suffix_and_by_magic_bytes(tmp_path):
    rows = simple_question("q", 1, 10, [0.2, 0.6, 0.7])
    for name in ("f.csv.gz", "f.csv"):
        path = write_csv(tmp_path / name, rows, compress=True)
        frame, _ = evaluation.load_forecasts(path)
        assert len(frame) == 3


def test_extra_columns_are_ignored_and_missing_ones_named(tmp_path):
    rows = [[*row, "extra"] for row in simple_question("q", 1, 10, [0.2, 0.6])]
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows, columns=[*COLUMNS, "note"]))
    assert len(frame) == 2
    with pytest.raises(evaluation.MissingColumnsError, match="outcome, resolved_at"):
        evaluation.load_forecasts(write_csv(tmp_path / "g.csv", [["q", "a", day(0), 0.5]], columns=COLUMNS[:4]))


# --- which forecasts and questions count ----------------------------------------------------------


def test_only_each_forecasters_latest_forecast_counts(tmp_path):
    rows = rows_for("q", 1, 10, [("a", 1, 0.1), ("b", 2, 0.3), ("c", 3, 0.4), ("a", 4, 0.9), ("b", 5, 0.8)])
    result = evaluate_rows(tmp_path, rows, min_forecasters=3, methods=["median", "mean"])
    assert result["methods"]["median"]["brier"] == pytest.approx((0.8 - 1) ** 2)
    assert result["methods"]["mean"]["brier"] == pytest.approx((0.7 - 1) ** 2)
    # three distinct forecasters, not five forecasts
    assert evaluate_rows(tmp_path, rows, min_forecasters=4, methods=["median"])["questions"] == 0


def test_latest_forecasts_are_ordered_oldest_first_ties_in_file_order(tmp_path):
    rows = rows_for("q", 1, 10, [("c", 3, 0.3), ("a", 1, 0.1), ("b", 3, 0.2), ("a", 5, 0.5), ("d", 3, 0.4)])
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    (history,) = evaluation.build_histories(frame)
    assert list(history.forecaster_ids) == ["c", "b", "d", "a"]
    np.testing.assert_allclose(history.probabilities[:, 1], [0.3, 0.2, 0.4, 0.5])
    np.testing.assert_allclose(history.probabilities.sum(axis=1), 1.0)
    assert list(history.all_forecasts.forecaster_ids) == ["a", "c", "b", "d", "a"]
    assert history.resolved_at == (EPOCH + timedelta(days=10)).timestamp()
    assert history.outcome_index == 1


def test_min_forecasters_and_since_filters(tmp_path):
    rows = simple_question("early5", 1, 10, [0.6] * 5)
    rows += simple_question("late5", 1, 40, [0.6] * 5)
    rows += simple_question("late4", 1, 40, [0.6] * 4)
    rows += simple_question("late6", 0, 50, [0.6] * 6)
    assert evaluate_rows(tmp_path, rows)["questions"] == 3
    assert evaluate_rows(tmp_path, rows, min_forecasters=4)["questions"] == 4
    assert evaluate_rows(tmp_path, rows, min_forecasters=6)["questions"] == 1
    # resolved on or after the date counts (day 40 is 2020-02-10)
    assert evaluate_rows(tmp_path, rows, since="2020-02-10")["questions"] == 2
    assert evaluate_rows(tmp_path, rows, since="2020-02-11")["questions"] == 1


# --- walk-forward learning ------------------------------------------------------------------------


def test_learners_only_see_questions_resolved_strictly_earlier(tmp_path, monkeypatch):
    rows = []
    for i, resolved in enumerate([5, 5, 20, 20, 21, 60, 61, 200]):
        rows += simple_question(f"q{i}", i % 2, resolved, [0.3, 0.6, 0.8], start_day=0)
    rows += simple_question("thin", 1, 3, [0.9])  # one forecaster: never training data
    rows += simple_question("pair", 0, 4, [0.2, 0.3])  # two forecasters: training but not scored
    fits, scored = [], []

    def spy(training):
        fits.append([h.question_id for h in training])
        latest_training = max((h.resolved_at for h in training), default=-math.inf)
        assert all(h.n_forecasters >= 2 for h in training)

        def hook(history):
            scored.append((history.question_id, history.resolved_at, latest_training))
            return np.array([0.5, 0.5])

        return {"__aggregate__": hook}

    monkeypatch.setitem(evaluation.LEARNERS, "median", spy)
    result = evaluate_rows(tmp_path, rows, min_forecasters=3, refit_every_days=30, methods=["median"])
    assert result["questions"] == 8
    assert sorted(q for q, _, _ in scored) == [f"q{i}" for i in range(8)]
    assert all(latest < resolved for _, resolved, latest in scored)
    # the defaults, then refits after days 4 (pair), 60 (q5) and 200 (q7): each question uses the
    # last fit made strictly before its end (q7's end is day 200 itself: the fit of day 60)
    assert fits == [[], ["pair"], ["pair"] + [f"q{i}" for i in range(6)]]
    assert result["refits"] == 3

    fits.clear()
    result = evaluate_rows(tmp_path, rows, min_forecasters=3, refit_every_days=0, methods=["median"])
    # a fit after every distinct resolution time up to the last one a question needs (day 61)
    assert fits[1:] == [["pair"], ["pair", "q0", "q1"], ["pair", *[f"q{i}" for i in range(4)]]] + [
        ["pair", *[f"q{i}" for i in range(n)]] for n in (5, 6, 7)
    ]
    assert result["refits"] == 7


def test_extremizing_factor_is_fit_on_earlier_questions_only(tmp_path):
    rows = []
    # Confident, always-right crowds: the fitted factor extremizes (> 1).
    for i in range(6):
        rows += simple_question(f"q{i}", 1, 10 + 40 * i, [0.7, 0.75, 0.8])
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    first = evaluation.evaluate(frame.iloc[:3], min_forecasters=3, methods=["extremized_logodds", "logodds_mean"])
    # the first question has nothing to learn from: factor 1, the plain log-odds mean
    assert first["methods"]["extremized_logodds"]["brier"] == pytest.approx(first["methods"]["logodds_mean"]["brier"])

    histories = evaluation.build_histories(frame)
    expected = [1.0] + [evaluation.fit_extremized_logodds(histories[:i])["factor"] for i in range(1, len(histories))]
    assert expected[-1] > 1.0
    p_yes = [aggregation.extremized_logodds([0.7, 0.75, 0.8], factor=f)[1] for f in expected]
    result = evaluation.evaluate(frame, min_forecasters=3, refit_every_days=30, methods=["extremized_logodds"])
    assert result["methods"]["extremized_logodds"]["brier"] == pytest.approx(np.mean((np.array(p_yes) - 1) ** 2))


# --- scores ---------------------------------------------------------------------------------------


def test_one_question_median_scores_by_hand(tmp_path):
    rows = simple_question("q", 1, 10, [0.2, 0.6, 0.7])
    result = evaluate_rows(tmp_path, rows, min_forecasters=3, methods=["median"])
    assert result["questions"] == 1
    assert result["methods"] == {
        "median": {"brier": pytest.approx(0.16), "log": pytest.approx(math.log(0.6)), "ece": 0.4}
    }


def test_log_score_is_clipped(tmp_path):
    rows = simple_question("q", 0, 10, [1.0, 1.0, 1.0])
    scores = evaluate_rows(tmp_path, rows, min_forecasters=3, methods=["median"])["methods"]["median"]
    assert scores["brier"] == pytest.approx(1.0)
    assert scores["log"] == pytest.approx(math.log(0.001))


def test_time_averaged_brier_by_hand(tmp_path):
    rows = rows_for("q", 1, 4, [("a", 0, 0.2), ("b", 1, 0.6), ("a", 3, 0.8)])
    result = evaluate_rows(tmp_path, rows, min_forecasters=2, methods=["mean", "median"], time_averaged=True)
    # mean: 0.2 for 1 day, (0.2 + 0.6) / 2 for 2 days, (0.6 + 0.8) / 2 for 1 day
    expected = (1 * 0.8**2 + 2 * 0.6**2 + 1 * 0.3**2) / 4
    assert result["methods"]["mean"]["brier_time_averaged"] == pytest.approx(expected)
    assert result["methods"]["mean"]["brier"] == pytest.approx(0.3**2)
    expected_log = (1 * math.log(0.2) + 2 * math.log(0.4) + 1 * math.log(0.7)) / 4
    assert result["methods"]["mean"]["log_time_averaged"] == pytest.approx(expected_log)
    assert evaluate_rows(tmp_path, rows, min_forecasters=2, methods=["mean"])["methods"] == {
        "mean": {"brier": pytest.approx(0.09), "log": pytest.approx(math.log(0.7)), "ece": pytest.approx(0.3)}
    }


def test_time_averaged_brier_averages_over_questions_and_skips_superseded_instants(tmp_path):
    rows = rows_for("q1", 0, 2, [("a", 0, 0.5), ("b", 1, 0.9), ("b", 1, 0.1)])
    rows += rows_for("q2", 1, 7, [("a", 7, 0.4), ("b", 7, 0.6)])  # zero-length life: its final Brier
    result = evaluate_rows(tmp_path, rows, min_forecasters=2, methods=["mean"], time_averaged=True)
    q1 = (1 * 0.5**2 + 1 * 0.3**2) / 2
    q2 = 0.5**2
    assert result["methods"]["mean"]["brier_time_averaged"] == pytest.approx((q1 + q2) / 2)


def test_time_averaged_hook_sees_the_question_as_it_stood(tmp_path, monkeypatch):
    rows = rows_for("q", 1, 4, [("a", 0, 0.2), ("b", 1, 0.6), ("a", 3, 0.8)])
    seen = []

    def hook(history):
        seen.append((list(history.forecaster_ids), len(history.all_forecasts.made_at)))
        return aggregation.mean(history.probabilities)

    monkeypatch.setitem(evaluation.LEARNERS, "mean", lambda training: {"__aggregate__": hook})
    result = evaluate_rows(tmp_path, rows, min_forecasters=2, methods=["mean"], time_averaged=True)
    assert result["methods"]["mean"]["brier_time_averaged"] == pytest.approx((0.64 + 2 * 0.36 + 0.09) / 4)
    assert seen == [(["b", "a"], 3), (["a"], 1), (["a", "b"], 2), (["b", "a"], 3)]


def test_unknown_method_is_a_value_error():
    with pytest.raises(ValueError, match=r"known: .*median"):
        evaluation.resolve_methods(["median", "nope"])


def test_table_is_sorted_by_brier(tmp_path):
    rows = simple_question("q", 1, 10, [0.1, 0.9, 0.95])
    result = evaluate_rows(tmp_path, rows, min_forecasters=3, methods=["mean", "median"])
    lines = evaluation.format_table(result).splitlines()
    assert lines[0].split() == ["method", "brier", "log", "ece"]
    assert [line.split()[0] for line in lines[1:3]] == ["median", "mean"]
    assert lines[-1] == "questions: 1"


# --- the command ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_json_output_shape(tmp_path):
    rows = simple_question("q1", 1, 10, [0.2, 0.6, 0.7, 0.9, 0.5])
    rows += simple_question("q2", 0, 50, [0.2, 0.6, 0.7, 0.1, 0.3])
    rows += rows_for("q2", 0, 50, [("late", 60, 0.5)])
    path = write_csv(tmp_path / "f.csv.gz", rows, compress=True)
    out, err = run_command(path, "--json")
    result = json.loads(out)
    assert set(result) == {"questions", "causal", "causal_rule", "refits", "methods"}
    assert result["causal"] is True
    assert result["questions"] == 2
    assert list(result["methods"]) == [*aggregation.AGGREGATORS, *evaluation.HOOK_ONLY_METHODS]
    for scores in result["methods"].values():
        assert set(scores) == {"brier", "log", "ece"}
        assert all(isinstance(v, float) for v in scores.values())
    assert "made_after_resolution: 1" in err

    out, _ = run_command(path, "--json", "--time-averaged", "--methods", "median,mean")
    result = json.loads(out)
    assert list(result["methods"]) == ["median", "mean"]
    assert set(result["methods"]["median"]) == {"brier", "log", "ece", "brier_time_averaged", "log_time_averaged"}


@pytest.mark.django_db
def test_command_filters_and_table(tmp_path):
    rows = simple_question("q1", 1, 10, [0.2, 0.6, 0.7])
    rows += simple_question("q2", 0, 50, [0.2, 0.6, 0.7, 0.1, 0.3])
    path = write_csv(tmp_path / "f.csv", rows)
    out, _ = run_command(path, "--min-forecasters", 3, "--since", "2020-01-05", "--refit-every", 7)
    assert out.splitlines()[-1] == "questions: 2"
    assert "recency_weighted_median" in out
    out, _ = run_command(path, "--since", "2020-01-20", "--json", "--methods", "median")
    expected = {"brier": pytest.approx(0.09), "log": pytest.approx(math.log(0.7)), "ece": pytest.approx(0.3)}
    result = json.loads(out)
    assert (result["questions"], result["methods"]) == (1, {"median": expected})


@pytest.mark.django_db
def test_command_with_no_question_prints_null_scores(tmp_path):
    path = write_csv(tmp_path / "f.csv", simple_question("q", 1, 10, [0.5]))
    out, _ = run_command(path, "--json", "--methods", "mean")
    result = json.loads(out)
    assert (result["questions"], result["methods"]) == (0, {"mean": {"brier": None, "log": None, "ece": None}})


@pytest.mark.django_db
def test_command_missing_column(tmp_path):
    path = write_csv(tmp_path / "f.csv", [["q", "a", day(0), 0.5, day(3)]], columns=[*COLUMNS[:4], "resolved_at"])
    with pytest.raises(CommandError, match=r"missing required column.*outcome"):
        run_command(path)


@pytest.mark.django_db
def test_command_unknown_method(tmp_path):
    path = write_csv(tmp_path / "f.csv", simple_question("q", 1, 10, [0.5] * 5))
    with pytest.raises(CommandError, match=r"unknown method.*bogus.*known:.*extremized_logodds"):
        run_command(path, "--methods", "median,bogus")


@pytest.mark.django_db
def test_command_missing_file_and_bad_since(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run_command(tmp_path / "nope.csv")
    path = write_csv(tmp_path / "f.csv", simple_question("q", 1, 10, [0.5] * 5))
    with pytest.raises(CommandError, match="--since"):
        run_command(path, "--since", "last week")


def test_calibration_points_by_hand():
    from forecasting.evaluation.plots import calibration_points

    points = calibration_points(np.array([0.05, 0.15, 0.12, 1.0, 0.95]), np.array([0, 1, 0, 1, 0]), bins=10)
    assert points == [
        (pytest.approx(0.05), 0.0, 1),
        (pytest.approx(0.135), 0.5, 2),
        (pytest.approx(0.975), 0.5, 2),
    ]
