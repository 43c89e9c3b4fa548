"""The skill-weighted log-odds mean (forecasting/evaluation/skill_weighted.py), the benchmark's strong
simple method, and its walk-forward learner in the evaluation."""

import math

import numpy as np
import pytest

from forecasting import aggregation
from forecasting.evaluation import learners
from forecasting.evaluation import skill_weighted as wl
from tests.forecasting.evaluation.helpers import evaluate_rows, rows_for


def test_the_default_weighting_is_the_plain_logodds_mean():
    p = np.array([0.2, 0.7, 0.95])
    combined = wl.combine(p, [30.0, 3.0, 0.0], [40.0, 10.0, 1.0], [0.1, 0.3, 0.2], wl.Weighting())
    assert combined == pytest.approx(aggregation.logodds_mean(p)[1])


def test_a_better_record_and_a_later_forecast_weigh_more():
    skilled = wl.Weighting(skill=1.0)
    # The same two opposite forecasts: the one by the forecaster with the lower Brier wins.
    assert wl.combine([0.9, 0.1], [0, 0], [5, 5], [0.05, 0.40], skilled) > 0.7
    assert wl.combine([0.9, 0.1], [0, 0], [5, 5], [0.40, 0.05], skilled) < 0.3
    close = wl.Weighting(closeness=1.0)
    # The forecast made a day before resolution outweighs the one made 100 days before.
    assert wl.combine([0.9, 0.1], [99, 0], [100, 1], [0.2, 0.2], close) < 0.3


def test_track_records_shrink_towards_the_population_and_newcomers_get_its_mean():
    records = wl.TrackRecords()
    assert records.brier(["anyone"])[0] == wl.DEFAULT_BRIER
    records.add(["good", "bad"], [0.9, 0.1], 1)  # Brier 0.01 and 0.81
    population = records.population_brier()
    assert population == pytest.approx(0.41)
    good, bad, new = records.brier(["good", "bad", "new"])
    assert good == pytest.approx((0.01 + wl.SHRINK_QUESTIONS * population) / (1 + wl.SHRINK_QUESTIONS))
    assert new == pytest.approx(population)
    assert good < new < bad


def _questions(n, rng):
    """A sharp forecaster who is right 90% of the time, and a noisy one at random."""
    questions, outcomes = [], []
    for _ in range(n):
        y = int(rng.uniform() < 0.5)
        sharp = 0.85 if (rng.uniform() < 0.9) == bool(y) else 0.15
        questions.append(
            {
                "p": np.array([sharp, rng.uniform(0.05, 0.95)]),
                "age_days": np.zeros(2),
                "days_to_resolution": np.full(2, 10.0),
                "brier": np.array([0.05, 0.35]),
            }
        )
        outcomes.append(y)
    return questions, outcomes


def _log_loss(questions, outcomes, weighting):
    p = np.array([wl.combine(q["p"], q["age_days"], q["days_to_resolution"], q["brier"], weighting) for q in questions])
    y = np.asarray(outcomes)
    return -np.mean(np.log(np.where(y == 1, p, 1 - p)))


def test_the_fitted_weighting_learns_to_trust_the_better_record():
    questions, outcomes = _questions(300, np.random.default_rng(0))
    fitted = wl.fit_weighting(questions, outcomes)
    assert fitted.skill > 0.5
    assert _log_loss(questions, outcomes, fitted) < _log_loss(questions, outcomes, wl.Weighting()) - 0.05
    assert wl.fit_weighting([], []) == wl.Weighting()


def test_walk_forward_records_only_use_questions_resolved_earlier(tmp_path, monkeypatch):
    # "oracle" is right on every question; the fitted aggregate of the last question must trust
    # oracle, and the records used for each training question must not include that question.
    rows = []
    for q in range(30):
        y = q % 2
        rows += rows_for(f"q{q}", y, 10 * q + 5, [("oracle", 10 * q, 0.8 if y else 0.2), ("crowd", 10 * q + 1, 0.5)])
    seen = []
    original = learners._weighting_rows

    def spy(history, records):
        seen.append((history.question_id, dict(records._count)))
        return original(history, records)

    monkeypatch.setattr(learners, "_weighting_rows", spy)
    result = evaluate_rows(tmp_path, rows, min_forecasters=2, methods=["skill_weighted_logodds", "logodds_mean"])
    for question_id, counts in seen:
        done = int(question_id[1:])
        assert counts.get("oracle", 0) <= done  # only questions before this one (or all, when scoring it)
    scores = result["methods"]
    assert scores["skill_weighted_logodds"]["brier"] < scores["logodds_mean"]["brier"]
    assert math.isfinite(scores["skill_weighted_logodds"]["ece"])


def test_perfect_records_keep_the_weights_finite():
    # Everything recorded so far was a correct 0% or 100%: the records are at the clip's Brier, not
    # 0, and the weighting can still be fitted and applied.
    records = wl.TrackRecords()
    records.add(["a", "b"], [1.0, 1.0], 1)
    brier = records.brier(["a", "b", "new"])
    assert np.all(brier > 0)
    p = wl.combine([1.0, 0.2], [0, 0], [1, 1], brier[:2], wl.Weighting(skill=2.0))
    assert 0 < p < 1
    questions, outcomes = _questions(100, np.random.default_rng(1))
    questions[0]["brier"] = np.zeros(2)  # a record of exactly 0 from elsewhere: floored, not log(0)
    questions.append(
        {"p": np.zeros(0), "age_days": np.zeros(0), "days_to_resolution": np.zeros(0), "brier": np.zeros(0)}
    )
    outcomes.append(1)
    assert wl.fit_weighting(questions, outcomes).skill > 0.5
