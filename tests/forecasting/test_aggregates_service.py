import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from forecasting import aggregation, services
from forecasting.models import AggregateSnapshot, AggregatorFit
from tests.factories import QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


def forecast(question, user, p, **kwargs):
    return services.prediction_create(question=question, forecaster=user, probability=Decimal(p), **kwargs)


def test_every_forecast_appends_one_snapshot_per_method(question):
    a, b = UserFactory.create_batch(2)
    forecast(question, a, "0.2")
    forecast(question, b, "0.6")
    forecast(question, a, "0.9")  # a's update replaces a's earlier forecast
    assert AggregateSnapshot.objects.filter(question=question).count() == 3 * len(aggregation.AGGREGATORS)
    current = services.aggregates_current(question=question)
    assert set(current) == set(aggregation.AGGREGATORS)
    assert current["median"].probability_yes == pytest.approx(0.75)
    assert current["mean"].probability_yes == pytest.approx(0.75)
    assert current["median"].forecasters == 2
    history = [s.probability_yes for s in services.aggregate_history(question=question, method="median")]
    assert history == pytest.approx([0.2, 0.4, 0.75])


def test_community_prediction_is_the_recency_weighted_median(question):
    users = UserFactory.create_batch(4)
    for user, p in zip(users, ["0.1", "0.7", "0.9", "0.3"], strict=True):
        forecast(question, user, p)
    community = services.community_forecast(question=question)
    assert community.forecasters == 4
    assert community.probability_yes == pytest.approx(0.3)


def test_updating_moves_the_forecaster_to_the_newest_position(question):
    users = UserFactory.create_batch(4)
    for user, p in zip(users, ["0.3", "0.1", "0.7", "0.9"], strict=True):
        forecast(question, user, p)
    forecast(question, users[0], "0.3")  # now oldest-to-newest: 0.1, 0.7, 0.9, 0.3
    assert services.community_forecast(question=question).probability_yes == pytest.approx(0.3)


def test_incremental_state_matches_a_full_recompute(question):
    rng = np.random.default_rng(1)
    users = UserFactory.create_batch(12)
    for _ in range(40):
        user = users[rng.integers(len(users))]
        forecast(question, user, f"{rng.integers(1, 100) / 100:.2f}")
    current = services.aggregates_current(question=question)
    full = services.aggregates_recompute(question=question)
    for name, vector in full.items():
        assert current[name].probabilities == pytest.approx(list(vector), abs=1e-6)


def test_history_rebuild_reproduces_the_incremental_history(question):
    users = UserFactory.create_batch(3)
    for user, p in zip(users * 2, ["0.2", "0.5", "0.8", "0.6", "0.4", "0.3"], strict=True):
        forecast(question, user, p)
    before = list(AggregateSnapshot.objects.order_by("id").values_list("method", "probabilities", "prediction"))
    assert services.aggregate_history_rebuild(question_id=question.pk) == len(before)
    after = list(AggregateSnapshot.objects.order_by("id").values_list("method", "probabilities", "prediction"))
    assert after == before


def test_multiple_choice_aggregates_are_renormalised(reader):
    question = multiple_choice_question()
    other = UserFactory()
    services.prediction_create(question=question, forecaster=reader, option_probabilities=["0.6", "0.3", "0.1"])
    services.prediction_create(question=question, forecaster=other, option_probabilities=["0.2", "0.2", "0.6"])
    for snapshot in services.aggregates_current(question=question).values():
        assert sum(snapshot.probabilities) == pytest.approx(1.0, abs=1e-5)
        assert len(snapshot.probabilities) == 3


def test_extremizing_factor_is_fit_on_resolved_questions_and_used_for_new_forecasts(editor):
    # Twelve resolved questions where the crowd said 70% and YES happened every time.
    for _ in range(12):
        q = QuestionFactory()
        for user in UserFactory.create_batch(2):
            forecast(q, user, "0.7")
        services.question_resolve(question=q, actor=editor, outcome="yes")
    fit, pool = services.aggregator_fits_refresh()
    assert fit.questions_used == 12
    assert fit.parameters["factor"] > 1.5
    assert pool.method == "learnt_pool" and pool.questions_used == 0  # no numeric question resolved
    assert AggregatorFit.objects.count() == 2
    fresh = QuestionFactory()
    forecast(fresh, UserFactory(), "0.7")
    extremized = services.aggregates_current(question=fresh)["extremized_logodds"]
    assert extremized.parameters == fit.parameters
    assert extremized.probability_yes > 0.9


def test_factor_stays_neutral_with_few_resolved_questions(editor):
    q = QuestionFactory()
    for user in UserFactory.create_batch(2):
        forecast(q, user, "0.7")
    services.question_resolve(question=q, actor=editor, outcome="yes")
    fit, _ = services.aggregator_fits_refresh()
    assert fit.parameters["factor"] == aggregation.DEFAULT_EXTREMIZING_FACTOR


def test_forecasts_after_close_leave_aggregates_untouched(reader):
    question = QuestionFactory(
        opens_at=timezone.now() - dt.timedelta(days=5), closes_at=timezone.now() - dt.timedelta(days=1)
    )
    with pytest.raises(ValidationError):
        forecast(question, reader, "0.5")
    assert not AggregateSnapshot.objects.exists()
