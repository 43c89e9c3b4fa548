"""Background work survives a broker outage (forecasting/jobs.py, services/outbox.py): tasks are written
to an outbox with the data that needs them, a publish error never fails the request, and the beat's
flush sends what the outage held back once the broker is back."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from celery.app.task import Task
from django.db import connection, transaction
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from forecasting import jobs, services, tasks
from forecasting.models import AggregateState, OutboxTask, Prediction, Question, Resolution, Score
from market import services as market_services
from market.models import MICRO, Market
from tests.api_helpers import client_for
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, editor_user

SCORE = "forecasting.tasks.score_question"
REFIT_AGGREGATORS = "forecasting.tasks.refit_aggregators"
BAYES_UPDATE = "forecasting.tasks.update_bayes_aggregate"


class BrokerDown:
    """Every task's publish fails as it does when the broker is unreachable; ``restore()`` brings it back."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.attempts = []

        def refuse(task, *args, **kwargs):
            self.attempts.append(task.name)
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        monkeypatch.setattr(Task, "apply_async", refuse)

    def restore(self):
        self.monkeypatch.undo()


@pytest.fixture
def broker_down(monkeypatch):
    return BrokerDown(monkeypatch)


def unsent(name=None):
    rows = OutboxTask.objects.filter(sent_at__isnull=True, failed_at__isnull=True)
    return rows.filter(task_name=name) if name else rows


def a_minute_later():
    """What the beat's flush sees a minute on (the outbox leaves rows this young to their request)."""
    minute = dt.timedelta(minutes=1)
    OutboxTask.objects.update(created_at=F("created_at") - minute, not_before=F("not_before") - minute)


def question_with_trade_and_forecasts(editor):
    question = services.question_open(question=QuestionFactory(status=Question.Status.DRAFT), actor=editor)
    trader, alice, bob = UserFactory.create_batch(3)
    market = Market.objects.get(question=question)
    trade = market_services.trade_execute(
        user=trader, market_id=market.pk, outcome=1, side="buy", amount=20 * MICRO, idempotency_key="k1"
    )
    PredictionFactory(question=question, forecaster=alice, probability=Decimal("0.9"))
    PredictionFactory(question=question, forecaster=bob, probability=Decimal("0.3"))
    return question, trader, trade


# --- a broker outage during requests (transactions commit for real, as in production) -----------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("via", ["api", "web"])
def test_resolving_during_a_broker_outage_succeeds_and_the_flush_scores_once_the_broker_is_back(
    via, broker_down, settings, fast_password_hashing
):
    editor = editor_user()
    question, trader, trade = question_with_trade_and_forecasts(editor)
    balance_before = market_services.account_balance(user=trader)

    if via == "api":
        response = client_for(editor).post(f"/api/v1/questions/{question.pk}/resolve/", {"outcome": "yes"})
        assert response.status_code == 200, response.content
    else:
        web = Client()
        settings.AXES_ENABLED = False  # force_login's bare request has no client address to record
        web.force_login(editor)
        response = web.post(reverse("question_resolve", args=[question.pk]), {"outcome": "yes", "source": "AP"})
        assert response.status_code == 302

    # The resolution and the payout are committed; the publish was tried and failed.
    assert Resolution.objects.filter(question=question, retracted_at__isnull=True).exists()
    assert Question.objects.get(pk=question.pk).status == Question.Status.RESOLVED
    assert market_services.account_balance(user=trader) == balance_before + trade.shares
    assert SCORE in broker_down.attempts
    assert not Score.objects.exists()
    # The outbox holds the work, with the error that held it back.
    score_row = unsent(SCORE).get()
    assert score_row.args == [question.pk] and score_row.attempts == 1
    assert "Connection refused" in score_row.last_error
    assert unsent(REFIT_AGGREGATORS).exists()

    # While the broker is still down, a flush sends nothing and loses nothing.
    a_minute_later()
    assert services.outbox_flush() == 0
    assert unsent(SCORE).exists()

    broker_down.restore()
    assert tasks.outbox_flush.apply().get()["sent"] >= 2
    assert not unsent().exists()
    # 2 forecasters x 4 kinds (Brier, log, baseline, peer) x (spot, time-averaged)
    assert Score.objects.filter(question=question).count() == 16
    # Sent once: a second flush finds nothing to send.
    assert services.outbox_flush() == 0


@pytest.mark.django_db(transaction=True)
def test_a_forecast_during_a_broker_outage_is_saved_once_and_its_bayesian_update_recovered(
    broker_down, fast_password_hashing
):
    question = QuestionFactory()
    reader = UserFactory()
    response = client_for(reader).post(
        "/api/v1/predictions/", {"question": question.pk, "probability": "0.37"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Prediction.objects.filter(question=question, forecaster=reader).count() == 1  # no retry, no duplicate
    assert BAYES_UPDATE in broker_down.attempts
    assert AggregateState.objects.get(question=question).bayes_pending
    assert unsent(BAYES_UPDATE).get().args == [question.pk]

    broker_down.restore()
    a_minute_later()
    assert services.outbox_flush() == 1
    assert not AggregateState.objects.get(question=question).bayes_pending  # the update ran


# --- the outbox itself --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_rolled_back_action_queues_nothing(question, editor):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.question_resolve(question=question, actor=editor, outcome="yes")
        raise RuntimeError("the request failed after the resolution")
    assert not OutboxTask.objects.exists()


@pytest.mark.django_db
def test_the_task_waits_for_the_commit_and_is_marked_sent(question, editor, django_capture_on_commit_callbacks):
    PredictionFactory(question=question)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.question_resolve(question=question, actor=editor, outcome="no")
    assert set(unsent().values_list("task_name", flat=True)) == {SCORE, REFIT_AGGREGATORS}
    assert not Score.objects.exists()
    for callback in callbacks:
        callback()
    # (scoring queued the resolution's notifications in turn: a callback this test does not run)
    assert not unsent(SCORE).exists() and not unsent(REFIT_AGGREGATORS).exists()
    assert Score.objects.filter(question=question).exists()
    assert set(
        OutboxTask.objects.filter(task_name__in=[SCORE, REFIT_AGGREGATORS]).values_list("attempts", flat=True)
    ) == {1}


@pytest.mark.django_db
def test_the_flush_leaves_young_rows_and_countdowns_not_yet_due(question):
    now = timezone.now()
    with transaction.atomic():  # (the test's own transaction never commits: no after-commit publish)
        jobs.enqueue(SCORE, question.pk)
        jobs.enqueue(SCORE, question.pk, countdown=600)
    assert services.outbox_flush(now=now) == 0  # the request's own publisher has these
    assert services.outbox_flush(now=now + dt.timedelta(minutes=1)) == 1  # the countdown still runs
    assert services.outbox_flush(now=now + dt.timedelta(minutes=11)) == 1
    assert not unsent().exists()


@pytest.mark.django_db
def test_the_flush_sends_oldest_first_in_bounded_batches(question, monkeypatch):
    with transaction.atomic():
        for _ in range(5):
            jobs.enqueue(SCORE, question.pk)
    sent = []
    monkeypatch.setattr(tasks.score_question, "apply_async", lambda args, **kw: sent.append(args))
    later = timezone.now() + dt.timedelta(minutes=1)
    oldest = list(unsent().order_by("created_at", "id").values_list("pk", flat=True))
    assert services.outbox_flush(now=later, batch_size=2, max_batches=1) == 2
    assert list(OutboxTask.objects.filter(sent_at__isnull=False).values_list("pk", flat=True)) == oldest[:2]
    assert services.outbox_flush(now=later, batch_size=2) == 3
    assert len(sent) == 5


@pytest.mark.django_db
def test_a_sent_row_is_not_sent_again(question):
    with transaction.atomic():
        jobs.enqueue(SCORE, question.pk)
    row = unsent().get()
    assert jobs.publish_rows([row.pk]) == 1
    assert jobs.publish_rows([row.pk]) == 0  # already sent: the re-check under the lock skips it
    row.refresh_from_db()
    assert row.attempts == 1 and row.sent_at is not None


@pytest.mark.django_db
def test_a_task_that_does_not_exist_is_given_up_and_does_not_block_the_rest(question):
    with transaction.atomic():
        jobs.enqueue("forecasting.tasks.no_such_task", 1)
        jobs.enqueue(SCORE, question.pk)
    assert services.outbox_flush(now=timezone.now() + dt.timedelta(minutes=1)) == 1
    bad = OutboxTask.objects.get(task_name="forecasting.tasks.no_such_task")
    assert bad.failed_at is not None and bad.sent_at is None and "no_such_task" in bad.last_error


@pytest.mark.django_db
def test_a_database_error_while_publishing_is_logged_not_raised(question, monkeypatch, caplog):
    with transaction.atomic():
        jobs.enqueue(SCORE, question.pk)
    row = unsent().get()

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(jobs, "_publish_one", broken)
    assert jobs.publish_rows([row.pk]) == 0
    assert "Could not publish outbox row" in caplog.text


@pytest.mark.django_db
def test_sent_rows_are_pruned_after_a_day(question):
    with transaction.atomic():
        jobs.enqueue(SCORE, question.pk)
        jobs.enqueue(SCORE, question.pk)
    old, recent = OutboxTask.objects.order_by("id")
    OutboxTask.objects.filter(pk=old.pk).update(sent_at=timezone.now() - dt.timedelta(days=2))
    OutboxTask.objects.filter(pk=recent.pk).update(sent_at=None)
    assert services.outbox_prune() == 1
    assert list(OutboxTask.objects.values_list("pk", flat=True)) == [recent.pk]


@pytest.mark.django_db
def test_the_beat_runs_the_flush_and_the_sweep(settings):
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["forecasting.tasks.outbox_flush"] <= 60
    assert "forecasting.tasks.sweep_unfinished" in schedule
    from webapp.celery import app

    assert {"forecasting.tasks.outbox_flush", "forecasting.tasks.sweep_unfinished"} <= set(app.tasks)


# --- the sweep: unfinished work that has no outbox row ----------------------------------------------------


@pytest.mark.django_db
def test_a_bayesian_update_lost_without_a_trace_is_requeued_by_the_sweep(django_capture_on_commit_callbacks):
    lost, queued = QuestionFactory(), QuestionFactory()
    for question in (lost, queued):
        services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal("0.6"))
    assert AggregateState.objects.filter(bayes_pending=True).count() == 2
    # ``lost``: its task vanished (e.g. queued before the outbox existed); ``queued`` has one on its way.
    OutboxTask.objects.all().delete()
    with transaction.atomic():
        jobs.enqueue(BAYES_UPDATE, queued.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.bayes_pending_sweep() == [lost.pk]
    assert not AggregateState.objects.get(question=lost).bayes_pending  # its update ran
    # Still waiting in the outbox after a long outage is not lost either: nothing is queued twice.
    OutboxTask.objects.update(created_at=F("created_at") - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_unfinished.apply().get() == {"bayes_updates": 0, "bayes_refit": False}
    assert OutboxTask.objects.filter(task_name=BAYES_UPDATE, args=[queued.pk]).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not connection.features.has_select_for_update_skip_locked, reason="needs row locks (PostgreSQL)")
def test_two_flushers_never_send_the_same_row(question, monkeypatch):
    with transaction.atomic():
        jobs.enqueue(SCORE, question.pk)
    row = OutboxTask.objects.get()
    OutboxTask.objects.filter(pk=row.pk).update(sent_at=None)  # as if its publish had failed
    sent = []
    monkeypatch.setattr(tasks.score_question, "apply_async", lambda args, **kw: sent.append(args))
    locked, release = threading.Event(), threading.Event()

    def other_flusher_mid_publish():
        try:
            with transaction.atomic():
                OutboxTask.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=other_flusher_mid_publish)
    other.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert jobs.publish_rows([row.pk]) == 0  # skipped, not waited for
        assert time.monotonic() - started < 5
    finally:
        release.set()
        other.join()
    assert jobs.publish_rows([row.pk]) == 1 and len(sent) == 1
