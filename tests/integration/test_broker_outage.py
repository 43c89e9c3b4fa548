"""A real broker outage: the app publishes to an address where no broker listens (connection refused).

Resolving still answers success with the resolution committed, the tasks wait in the outbox, and
once the broker is back the beat's flush sends them to a real worker, which scores the question.
Nothing is mocked or run eagerly.
"""

import datetime as dt
import os
import time
import uuid
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.db.models import F
from kombu import pools

from forecasting import services
from forecasting.models import OutboxTask, Question, Score
from tests.api_helpers import client_for
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, editor_user
from webapp.celery import app

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]

UNREACHABLE = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connection is refused at once


def _reconnect() -> None:
    """Drop the app's pooled broker connections, so the next publish connects to ``broker_url`` anew."""
    pools.reset()  # kombu's registry of pools, keyed by connection: closes them and forgets them
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(settings, monkeypatch):
    """Switches between an unreachable broker (``down()``) and the configured one with a live worker (``up()``)."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue

    class Broker:
        # Celery reads CELERY_BROKER_URL from the environment before its own setting (as CI sets it).
        def down(self):
            app.conf.broker_url = UNREACHABLE
            monkeypatch.setenv("CELERY_BROKER_URL", UNREACHABLE)
            _reconnect()

        def up(self):
            app.conf.broker_url = saved[0]
            if saved_env is None:
                monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
            else:
                monkeypatch.setenv("CELERY_BROKER_URL", saved_env)
            _reconnect()
            return start_worker(app, pool="solo", queues=[queue], perform_ping_check=False, shutdown_timeout=30)

    try:
        yield Broker()
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app.conf.task_default_queue = saved
        _reconnect()


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_resolving_while_the_broker_is_unreachable_succeeds_and_the_flush_recovers(broker):
    question = QuestionFactory()
    editor = editor_user()
    alice, bob = UserFactory.create_batch(2)
    PredictionFactory(question=question, forecaster=alice, probability=Decimal("0.9"))
    PredictionFactory(question=question, forecaster=bob, probability=Decimal("0.3"))

    broker.down()
    started = time.monotonic()
    response = client_for(editor).post(f"/api/v1/questions/{question.pk}/resolve/", {"outcome": "yes"})
    assert response.status_code == 200, response.content
    assert time.monotonic() - started < 30  # the failed publish does not hang the request
    assert Question.objects.get(pk=question.pk).status == Question.Status.RESOLVED
    row = OutboxTask.objects.get(task_name="forecasting.tasks.score_question")
    assert row.sent_at is None and row.attempts == 1 and row.last_error

    with broker.up():
        minute = dt.timedelta(minutes=1)  # the flush leaves rows younger than a few seconds to their request
        OutboxTask.objects.update(created_at=F("created_at") - minute, not_before=F("not_before") - minute)
        assert services.outbox_flush() >= 2
        # 2 forecasters x 4 kinds x (spot, time-averaged), by the real worker
        assert _wait_for(lambda: Score.objects.filter(question=question).count() == 16), "never scored"
    assert not OutboxTask.objects.filter(sent_at__isnull=True, failed_at__isnull=True).exists()
