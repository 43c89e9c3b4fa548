"""Fixtures of the export tests: a small newsroom with every kind of data (``analyst`` and
``fast_password_hashing`` come from tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from forecasting import services
from forecasting.models import AggregateSnapshot, ModelRun, Question, Score
from market import services as market_services
from market.models import MICRO
from tests.factories import (
    ArticleFactory,
    QuestionFactory,
    UserFactory,
    multiple_choice_question,
)
from tests.forecasting.io.export_helpers import forecast


@pytest.fixture
def world(editor, django_capture_on_commit_callbacks):
    """Two articles; a resolved yes/no question with a Bayesian aggregate, a resolved multiple-choice
    question, an open question with a market, and a draft that must never be exported."""
    alice, bob, carol, dave = (UserFactory(username=name) for name in ("alice", "bob", "carol", "dave"))
    politics = ArticleFactory(slug="politics", title="Ceasefire talks")
    sport = ArticleFactory(slug="sport", title="The final")
    q1 = QuestionFactory(article=politics, title="Ceasefire by June?")
    q2 = multiple_choice_question(article=politics, title="Who mediates?", labels=("Qatar", "Egypt", "Norway"))
    q3 = QuestionFactory(article=sport, title="Home win?")
    draft = QuestionFactory(article=politics, title="Secret draft?", status=Question.Status.DRAFT)

    forecast(q1, alice, "0.2")
    forecast(q1, bob, "0.65")
    forecast(q1, alice, "0.3725")  # an update: a new row
    forecast(q1, carol, "0.99")
    services.prediction_create(question=q2, forecaster=alice, option_probabilities=["0.6", "0.3", "0.1"])
    services.prediction_create(question=q2, forecaster=bob, option_probabilities=["0.25", "0.25", "0.5"])
    forecast(q3, alice, "0.55")
    forecast(q3, dave, "0.4")

    run = ModelRun.objects.create(method=ModelRun.Method.MAP, status=ModelRun.Status.SUCCEEDED)
    AggregateSnapshot.objects.create(
        question=q1,
        method="bayes",
        at=q1.opens_at + dt.timedelta(hours=1),
        probabilities=[0.412345, 0.587655],
        forecasters=3,
        low=0.401,
        high=0.7723,
        model_run=run,
        parameters={"model_run": run.pk, "method": "map"},
    )

    market = market_services.market_create(question=q3)
    market_services.trade_execute(
        user=dave, market_id=market.pk, outcome=1, side="buy", amount=10 * MICRO, idempotency_key=uuid.uuid4().hex
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.question_resolve(question=q1, actor=editor, outcome="yes")
        services.question_resolve(question=q2, actor=editor, outcome="option", option_id=q2.options.get(position=1).pk)
    assert Score.objects.filter(question=q1).count() == 3 * 8
    assert Score.objects.filter(question=q2).count() == 2 * 8
    return {
        "users": {"alice": alice, "bob": bob, "carol": carol, "dave": dave},
        "articles": (politics, sport),
        "questions": (q1, q2, q3),
        "draft": draft,
        "run": run,
        "market": market,
    }
