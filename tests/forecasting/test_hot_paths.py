"""The hot paths' shortcuts give the answers of the slow paths (issue 23): the aggregate state's
checkpoint and tail, the cached aggregate histories, and the scores written with a COPY."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from forecasting import services
from forecasting.models import AggregateSnapshot, AggregateState, Score
from forecasting.services import aggregates, history, latest, scores, snapshot_history
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _forecasts(question, users, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        p = Decimal(5 + (i * 37) % 90) / 100
        services.prediction_create(question=question, forecaster=users[i % len(users)], probability=p)


def test_the_state_is_written_back_once_every_checkpoint(monkeypatch):
    monkeypatch.setattr(aggregates, "CHECKPOINT_EVERY", 4)
    question = QuestionFactory()
    users = UserFactory.create_batch(5)
    _forecasts(question, users, 11)
    state = AggregateState.objects.get(question=question)
    stored = latest.LatestForecasts.unpack(state)
    loaded, tail = latest.LatestForecasts.load_with_tail(state)
    assert 0 < tail < 4  # the forecasts since the last write, read through their snapshots
    assert len(stored.forecaster_ids) == 5 and len(loaded.forecaster_ids) == 5
    recomputed = services.aggregates_recompute(question=question)
    current = services.aggregates_current(question=question)
    for method, vector in recomputed.items():
        assert current[method].probabilities == pytest.approx(list(vector), abs=1e-6)
    # the distribution reads the state with its tail: every forecaster's latest forecast
    assert history.forecast_distribution(question=question).forecasters == 5


def test_folding_the_tail_twice_changes_nothing(monkeypatch):
    """A checkpoint that lags (or forecasts folded again) is never wrong: a suffix applied in order is idempotent."""
    monkeypatch.setattr(aggregates, "CHECKPOINT_EVERY", 3)
    question = QuestionFactory()
    users = UserFactory.create_batch(4)
    _forecasts(question, users, 7)
    state = AggregateState.objects.get(question=question)
    once = latest.LatestForecasts.load(state)
    state.last_prediction = None  # as if the checkpoint were older than every forecast
    twice = latest.LatestForecasts.load(state)
    assert once.forecaster_ids.tolist() == twice.forecaster_ids.tolist()
    assert np.array_equal(once.probabilities, twice.probabilities)


def test_a_rebuild_checkpoints_every_forecast():
    question = QuestionFactory()
    users = UserFactory.create_batch(3)
    _forecasts(question, users, 5)
    services.aggregate_state_rebuild(question_id=question.pk)
    state = AggregateState.objects.get(question=question)
    assert latest.tail_forecasts(state) == []
    assert state.last_prediction_id == question.predictions.order_by("-id").first().pk


def test_the_cached_history_follows_new_forecasts_and_rebuilds():
    question = QuestionFactory()
    users = UserFactory.create_batch(4)
    _forecasts(question, users, 3)
    first = snapshot_history.method_history(question.pk, "mean")
    assert len(first) == 3
    _forecasts(question, users, 2, start=3)
    extended = snapshot_history.method_history(question.pk, "mean")  # from the cache and the two new rows
    stored = list(
        AggregateSnapshot.objects.filter(question=question, method="mean")
        .order_by("at", "id")
        .values_list("id", "probabilities")
    )
    assert extended.ids.tolist() == [pk for pk, _ in stored]
    assert extended.values.tolist() == [p for _, p in stored]
    services.aggregate_history_rebuild(question_id=question.pk)  # every snapshot replaced: read again
    rebuilt = snapshot_history.method_history(question.pk, "mean")
    assert rebuilt.ids.tolist() == list(
        AggregateSnapshot.objects.filter(question=question, method="mean")
        .order_by("at", "id")
        .values_list("id", flat=True)
    )


def test_the_chart_series_round_as_before():
    question = QuestionFactory()
    users = UserFactory.create_batch(6)
    _forecasts(question, users, 9)
    (series,) = history.community_series(question=question)
    rows = AggregateSnapshot.objects.filter(question=question, method=services.HEADLINE_METHOD).order_by("at", "id")
    assert series.times == [round(s.at.timestamp(), 3) for s in rows]
    assert series.values == [round(s.probabilities[-1], 4) for s in rows]


SCORE_COLUMNS = ("forecaster_id", "prediction_id", "kind", "method", "value", "coverage")


def _scores(question) -> list[tuple]:
    return sorted(Score.objects.filter(question=question).values_list(*SCORE_COLUMNS))


def test_scores_written_with_a_copy_equal_the_orms(monkeypatch, editor):
    question = QuestionFactory()
    users = UserFactory.create_batch(6)
    _forecasts(question, users, 10)
    services.question_resolve(question=question, actor=editor, outcome="yes")
    services.question_scores_recompute(question_id=question.pk)
    by_orm = _scores(question)
    Score.objects.filter(question=question).delete()
    monkeypatch.setattr(scores, "COPY_MIN_ROWS", 1)
    assert services.question_scores_recompute(question_id=question.pk) == len(by_orm)
    assert _scores(question) == by_orm
    services.question_scores_recompute(question_id=question.pk)  # twice: the same rows (an upsert)
    assert _scores(question) == by_orm
