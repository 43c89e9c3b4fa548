import datetime as dt
import os
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from forecasting import services
from forecasting.models import Question, Resolution
from tests.api_helpers import client_for
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, analyst_user, editor_user

# CI (``.ci/run``) sets HYPOTHESIS_PROFILE=ci: the same examples on every run, so that a gate never
# fails on a new random draw; local runs keep drawing new examples, which is where bugs are found.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def celery_eager(settings):
    """Run tasks inline (still only when the enqueuing transaction commits).

    The integration tests in tests/integration turn this off and use a real worker.
    """
    from webapp.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def no_automatic_model_refits(settings):
    """Resolutions in tests don't fit the Bayesian model unless a test asks for it (the automatic
    path is tested in tests/forecasting/test_bayesian_service.py); fits are MAP (fast), and test
    workers (tests/integration) skip the model's warm-up compile."""
    settings.BAYES_AUTO_REFIT = False
    settings.BAYES_FIT_METHOD = "map"
    settings.BAYES_WORKER_WARM_UP = False


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters (the default cache, per process in tests) start at zero in each test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def reader(db):
    return UserFactory(username="alice")


@pytest.fixture
def editor(db):
    return editor_user(username="erin")


@pytest.fixture
def question(db):
    return QuestionFactory()


# --- the REST API's tests (tests/forecasting/api, tests/market/api) ---------------------------------------


@pytest.fixture
def fast_password_hashing(settings):
    """The factories set passwords; PBKDF2 would make each test's half-dozen users take seconds.

    Ask for it before any user is made (``pytest.mark.usefixtures`` in ``pytestmark``): a password
    hashed with PBKDF2 does not check once MD5 is the only hasher.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def reader_api(reader):
    return client_for(reader)


@pytest.fixture
def editor_api(editor):
    return client_for(editor)


@pytest.fixture
def analyst(db):
    return analyst_user(username="ann")


@pytest.fixture
def analyst_api(analyst):
    return client_for(analyst)


@pytest.fixture
def opened_question(db, editor):
    """An open yes/no question opened by an editor (so it has its market)."""
    question = QuestionFactory(status=Question.Status.DRAFT)
    return services.question_open(question=question, actor=editor)


@pytest.fixture
def resolved_question(db, editor):
    """A yes/no question open for 10 days in the past, three forecasters, resolved YES and scored."""
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
