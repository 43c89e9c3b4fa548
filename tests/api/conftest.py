"""Fixtures for the API's contract tests."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Every test user gets a password; the default hasher would make the suite several times slower."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def reader_api(reader):
    from tests.api.helpers import client_for

    return client_for(reader)


@pytest.fixture
def editor_api(editor):
    from tests.api.helpers import client_for

    return client_for(editor)


@pytest.fixture
def analyst(db):
    from tests.factories import analyst_user

    return analyst_user(username="ann")


@pytest.fixture
def analyst_api(analyst):
    from tests.api.helpers import client_for

    return client_for(analyst)


@pytest.fixture
def opened_question(db, editor):
    """An open yes/no question opened by an editor (so it has its market)."""
    from forecasting import services
    from forecasting.models import Question
    from tests.factories import QuestionFactory

    question = QuestionFactory(status=Question.Status.DRAFT)
    return services.question_open(question=question, actor=editor)


@pytest.fixture
def resolved_question(db, editor):
    """A yes/no question open for 10 days in the past, three forecasters, resolved YES and scored."""
    from forecasting import services
    from forecasting.models import Question, Resolution
    from tests.factories import PredictionFactory, QuestionFactory, UserFactory

    start = timezone.now() - dt.timedelta(days=20)
    question = QuestionFactory(opens_at=start, closes_at=start + dt.timedelta(days=10), title="Resolved?")
    for i, (user, p) in enumerate(zip(UserFactory.create_batch(3), ("0.2", "0.6", "0.9"), strict=True)):
        PredictionFactory(
            question=question, forecaster=user, probability=Decimal(p), made_at=start + dt.timedelta(days=i)
        )
    Resolution.objects.create(question=question, outcome=Resolution.Outcome.YES, resolved_by=editor)
    Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
    services.question_scores_recompute(question_id=question.pk)
    question.refresh_from_db()
    return question
