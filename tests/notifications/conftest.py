import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from forecasting import services
from forecasting.models import Question
from tests.factories import PredictionFactory, QuestionFactory, UserFactory


@pytest.fixture(autouse=True)
def eager_errors_raise():
    """Eager tasks raise their errors here (a swallowed one would pass for "nothing to notify")."""
    from webapp.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _fast(fast_password_hashing, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://forecasts.example"
    settings.ALLOWED_HOSTS = ["testserver", "forecasts.example"]


def forecast_question(n: int, *, title: str = "Will it rain?", **kwargs) -> tuple[Question, list]:
    """An open yes/no question that opened 10 days ago with ``n`` forecasters (0.2, 0.3, ... cycling)."""
    start = timezone.now() - dt.timedelta(days=10)
    question = QuestionFactory(title=title, opens_at=start, published_at=start, **kwargs)
    readers = UserFactory.create_batch(n)
    for i, reader in enumerate(readers):
        p = Decimal("0.2") + Decimal("0.1") * (i % 7)
        PredictionFactory(question=question, forecaster=reader, probability=p, made_at=start + dt.timedelta(hours=i))
    return question, readers


@pytest.fixture
def resolve(editor, django_capture_on_commit_callbacks):
    """``resolve(question)``: an editor resolves it YES, and the queued tasks run (scores, then notices)."""

    def resolve(question: Question, outcome: str = "yes"):
        with django_capture_on_commit_callbacks(execute=True):
            return services.question_resolve(question=question, actor=editor, outcome=outcome)

    return resolve


@pytest.fixture
def run_commits(django_capture_on_commit_callbacks):
    """``with run_commits(): ...``: what the block queues runs when it "commits"."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run
