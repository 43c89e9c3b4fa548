"""The evaluation of multiple-choice questions: the flat format read and cleaned, the scores by hand, the
Bayesian aggregate as renormalised yes/no fits, and the command detecting the format."""

import io
import json
import math

import numpy as np
import pytest
from django.core.management import call_command

from forecasting import evaluation
from forecasting.evaluation import multiple_choice
from tests.forecasting.evaluation.helpers import day, write_csv

COLUMNS = ["question_id", "forecaster_id", "made_at", "options", "probabilities", "outcome", "resolved_at", "closes_at"]
LABELS = ["low", "mid", "high"]


def row(qid, who, made, probabilities, outcome="mid", resolved=20, closes=10, labels=LABELS):
    return [qid, who, day(made), json.dumps(labels), json.dumps(probabilities), outcome, day(resolved), day(closes)]


def frame_of(tmp_path, rows):
    return evaluation.read_csv(write_csv(tmp_path / "mc.csv", rows, columns=COLUMNS))


def test_bad_rows_are_dropped_and_counted(tmp_path):
    rows = [
        row("q", "a", 1, [0.2, 0.5, 0.3]),
        row("q", "b", 2, [0.2, 0.5, 0.4]),  # sums to 1.1
        row("q", "c", 2, [0.5, 0.5]),  # one value short
        row("q", "d", 2, [-0.1, 0.6, 0.5]),
        row("q", "e", 2, [0.2, 0.5, 0.3], outcome="none of these"),
        row("q", "f", 11, [0.2, 0.5, 0.3]),  # after the close
        row("q", "g", 21, [0.2, 0.5, 0.3]),  # after the resolution
        ["q", "h", day(2), "not json", "[1]", "mid", day(20), day(10)],
    ]
    clean, dropped = evaluation.clean_multiple_choice(frame_of(tmp_path, rows))
    assert list(clean["forecaster_id"]) == ["a"]
    assert dropped == {
        "unparsable_date": 0,
        "bad_probability": 4,
        "bad_outcome": 1,
        "made_after_resolution": 1,
        "made_after_close": 1,
        "inconsistent_question": 0,
    }


def test_a_question_whose_rows_disagree_on_the_options_is_dropped(tmp_path):
    rows = [row("q", "a", 1, [0.2, 0.5, 0.3]), row("q", "b", 1, [0.5, 0.5], labels=["mid", "other"])]
    rows += [row("ok", "a", 1, [0.2, 0.5, 0.3])]
    clean, dropped = evaluation.clean_multiple_choice(frame_of(tmp_path, rows))
    assert dropped["inconsistent_question"] == 2 and set(clean["question_id"]) == {"ok"}


def test_scores_by_hand_on_the_latest_forecasts(tmp_path):
    rows = [
        row("q", "a", 1, [0.6, 0.3, 0.1]),
        row("q", "b", 2, [0.2, 0.6, 0.2]),
        row("q", "a", 3, [0.2, 0.4, 0.4]),  # replaces a's first forecast
    ]
    result = evaluation.evaluate_multiple_choice(frame_of(tmp_path, rows), min_forecasters=2, methods=["mean"])
    mean = np.array([0.2, 0.5, 0.3])
    assert result["questions"] == 1 and result["question_type"] == "multiple_choice" and result["causal"] is True
    scores = result["methods"]["mean"]
    assert scores["brier"] == pytest.approx(0.2**2 + 0.5**2 + 0.3**2)
    assert scores["log"] == pytest.approx(math.log(mean[1]))


def test_the_geometric_mean_and_the_bayesian_aggregate_are_distributions(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for i in range(12):
        winner = int(rng.integers(3))
        for j in range(4):
            p = np.full(3, 0.15)
            p[winner] = 0.7 if j < 2 else 0.3
            p[(winner + 1) % 3] += 0.4 if j >= 2 else 0.0
            p = p / p.sum()
            rows.append(row(f"q{i}", f"f{j}", 10 * i + j, p.round(6).tolist(), LABELS[winner], 10 * i + 9, 10 * i + 8))
    result = evaluation.evaluate_multiple_choice(frame_of(tmp_path, rows), min_forecasters=3)
    assert set(result["methods"]) == set(multiple_choice.METHODS)
    for scores in result["methods"].values():
        assert 0 <= scores["brier"] <= 2 and scores["log"] <= 0
    # two forecasters are right every time: the model learns it, the plain mean does not
    assert result["methods"]["bayes_model"]["brier"] < result["methods"]["mean"]["brier"]


def test_unknown_method_for_multiple_choice(tmp_path):
    with pytest.raises(ValueError, match=r"unknown method.*extremized_logodds"):
        evaluation.evaluate_multiple_choice(
            frame_of(tmp_path, [row("q", "a", 1, [0.2, 0.5, 0.3])]), methods=["extremized_logodds"]
        )


@pytest.mark.django_db
def test_command_detects_the_format_from_the_header(tmp_path):
    rows = [row("q", who, 1 + i, [0.2, 0.5, 0.3]) for i, who in enumerate("abc")]
    path = write_csv(tmp_path / "mc.csv", rows, columns=COLUMNS)
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "evaluate_aggregators",
        str(path),
        "--json",
        "--min-forecasters",
        "3",
        "--methods",
        "mean,bayes",
        stdout=out,
        stderr=err,
    )
    result = json.loads(out.getvalue())
    assert result["question_type"] == "multiple_choice" and result["questions"] == 1
    assert result["methods"]["mean"]["brier"] == pytest.approx(0.2**2 + 0.5**2 + 0.3**2)
    # nothing learnt yet: the Bayesian aggregate is the renormalised log-odds mean of each option
    per_option = [1 / (1 + math.exp(-math.log(p / (1 - p)))) for p in (0.2, 0.5, 0.3)]
    expected = np.array(per_option) / sum(per_option)
    assert result["methods"]["bayes"]["brier"] == pytest.approx(float(np.sum((expected - [0, 1, 0]) ** 2)), abs=1e-9)
