"""A real Celery worker consumes from the configured broker: Redis in CI, the embedded
filesystem broker on a developer machine. Nothing here is mocked or run eagerly."""

import time
import uuid
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from forecasting import services
from forecasting.models import Score
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, editor_user
from webapp.celery import app

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_worker(settings):
    """A worker thread on a queue of its own, so stale messages from a demo run can't interfere."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        with start_worker(app, pool="solo", queues=[queue], perform_ping_check=False, shutdown_timeout=30):
            yield
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_resolving_a_question_gets_it_scored_by_the_worker(live_worker):
    question = QuestionFactory()
    editor = editor_user()
    alice, bob = UserFactory.create_batch(2)
    PredictionFactory(question=question, forecaster=alice, probability=Decimal("0.9"))
    PredictionFactory(question=question, forecaster=bob, probability=Decimal("0.3"))

    with transaction.atomic():
        services.question_resolve(question=question, actor=editor, outcome="yes")
        # Nothing reaches the broker before the resolution is committed.
        assert not Score.objects.exists()

    # 2 forecasters x 4 kinds (Brier, log, baseline, peer) x (spot, time-averaged)
    assert _wait_for(lambda: Score.objects.filter(question=question).count() == 16), "the worker never scored"
    brier = dict(
        Score.objects.filter(question=question, kind="brier", method="spot").values_list(
            "forecaster__username", "value"
        )
    )
    assert brier == {alice.username: Decimal("0.010000"), bob.username: Decimal("0.490000")}

    # Un-resolving goes through the same worker and removes the scores.
    services.question_unresolve(question=question, actor=editor)
    assert _wait_for(lambda: not Score.objects.filter(question=question).exists()), "scores were not removed"
