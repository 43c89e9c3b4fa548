"""Faults, injected for real: a worker SIGKILLed inside a task's transaction (scoring) and in the
middle of the model refits, and the database's
connections cut under the web and a worker. Recovery must come from the product's own mechanisms
(acks_late redelivery, the refit's lease, connection health checks, autoretry),
with no manual step.

The workers are real ``celery worker`` subprocesses (solo pool) on a queue of their own, against
the test database and the configured broker. Killing them at a known point needs PostgreSQL's row
locks (the test holds a lock the task needs, waits until the worker is blocked on it, then kills
it) and redelivery of an unacknowledged message needs Redis: CI runs both (.ci/run). The
export fault needs neither (test_faults_export.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from forecasting import bayes, jobs, services
from forecasting.models import (
    AggregateSnapshot,
    AggregatorFit,
    ModelRun,
    ModelSchedule,
    Prediction,
    Question,
    Resolution,
    Score,
)
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, editor_user
from webapp.celery import app

REPO = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 2  # seconds an unacknowledged message waits before the broker hands it out again

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL's row locks and pg_terminate_backend (CI has it)"
)
needs_redis = pytest.mark.skipif(
    not str(app.conf.broker_url or "").startswith("redis"),
    reason="needs a broker that redelivers unacknowledged messages: Redis (CI has it)",
)

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1) -> object:
    """The predicate's first truthy value within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def database_url() -> str:
    """The test database (not the configured one) as a URL, for the worker subprocesses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """One ``celery worker`` subprocess on the test's queue."""

    def __init__(self, queue: str, log: Path, env: dict[str, str]) -> None:
        self.log = log
        command = [
            sys.executable, "-m", "celery", "-A", "webapp", "worker", "--pool=solo", "-Q", queue,
            "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel=WARNING",
            "-n", f"faults-{uuid.uuid4().hex[:8]}@%h",
        ]  # fmt: skip
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)  # no ack, no cleanup, no goodbye to the database
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class FaultQueue:
    """This test's own queue: ``publish_only()`` sends tasks there; calling it starts a worker on it."""

    def __init__(self, tmp_path: Path) -> None:
        self.queue = f"faults-{uuid.uuid4().hex[:12]}"
        self.tmp_path = tmp_path
        self.workers: list[Worker] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": str(app.conf.broker_url),
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",  # look for such messages on every poll
            "BAYES_WORKER_WARM_UP": "0",
            "BAYES_FIT_METHOD": "map",
            "BAYES_AUTO_REFIT": "0",
            "BAYES_REFIT_DEBOUNCE_SECONDS": "0",
            "BAYES_AGGREGATE_DEBOUNCE_SECONDS": "0",
            # What a worker queues itself (a good refit's per-question updates) stays on this queue.
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
        }

    def publish_only(self) -> None:
        app.conf.task_always_eager = False
        app.conf.task_default_queue = self.queue

    def __call__(self, **extra_env: str) -> Worker:
        self.publish_only()
        worker = Worker(self.queue, self.tmp_path / f"worker-{len(self.workers)}.log", {**self.env, **extra_env})
        self.workers.append(worker)
        return worker


@contextlib.contextmanager
def fault_queue_in(tmp_path: Path) -> Iterator[FaultQueue]:
    """A ``FaultQueue`` whose workers are stopped, and the app's publishing restored, on the way out."""
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    faults = FaultQueue(tmp_path)
    try:
        yield faults
    finally:
        for worker in faults.workers:
            worker.stop()
        app.conf.task_always_eager, app.conf.task_default_queue = previous


@pytest.fixture
def fault_queue(settings, tmp_path) -> Iterator[FaultQueue]:
    """Tasks stay eager (in-process) until ``publish_only()`` or the first worker, so a test's setup
    runs its own background work before any fault."""
    with fault_queue_in(tmp_path) as faults:
        yield faults


def blocked_by_me() -> list[int]:
    """Server pids of the sessions waiting for a lock this session holds (pg_locks is live, not snapshotted)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT pid FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return [pid for (pid,) in cursor.fetchall()]


def score_table(question: Question) -> list[tuple]:
    return list(
        Score.objects.filter(question=question)
        .order_by("forecaster_id", "kind", "method")
        .values_list("forecaster_id", "kind", "method", "value", "coverage", "resolution_id", "prediction_id")
    )


# --- 1. a worker SIGKILLed mid-scoring ----------------------------------------------------------------


@needs_postgresql
@needs_redis
def test_worker_killed_inside_the_scoring_transaction_is_redelivered_and_scores_as_undisturbed(fault_queue):
    question = QuestionFactory()
    forecasters = UserFactory.create_batch(3)
    for user, probabilities in zip(forecasters, (("0.2", "0.7"), ("0.6",), ("0.9", "0.4")), strict=True):
        for p in probabilities:
            PredictionFactory(question=question, forecaster=user, probability=Decimal(p))
    fault_queue.publish_only()
    # Commits the resolution and publishes score_question (and refit_aggregators) to the test's queue.
    services.question_resolve(question=question, actor=editor_user(), outcome="yes")
    resolution = question.resolutions.get()

    with transaction.atomic():
        # An uncommitted score with a key the worker will write: its upsert waits on this transaction,
        # after it has locked the question and computed every score, inside its own transaction.
        Score.objects.create(
            question=question,
            forecaster=forecasters[0],
            resolution=resolution,
            prediction=Prediction.objects.filter(forecaster=forecasters[0]).first(),
            kind=Score.Kind.BRIER,
            method=Score.Method.SPOT,
            value=Decimal("9"),
            coverage=Decimal("0"),
        )
        first = fault_queue()
        assert wait_for(blocked_by_me), f"the worker never reached the scores' upsert:\n{first.output()}"
        first.kill()
        killed_at = time.monotonic()
        transaction.set_rollback(True)

    # The dead worker's transaction never commits: no partial scores, and none of the test's.
    time.sleep(0.5)
    assert not Score.objects.filter(question=question).exists()

    second = fault_queue()  # recovery: the broker hands the unacknowledged message out again
    n_expected = len(forecasters) * 4 * 2  # 4 kinds x (spot, time-averaged)
    recovered = wait_for(lambda: Score.objects.filter(question=question).count() == n_expected, timeout=25)
    assert recovered, f"the killed scoring was never redone:\n{second.output()}"
    print(f"scoring recovered {time.monotonic() - killed_at:.1f} s after the kill")
    stored = score_table(question)

    # What an undisturbed run gives on the same data, computed afterwards in this process.
    with transaction.atomic():
        Score.objects.filter(question=question).delete()
        services.question_scores_recompute(question_id=question.pk)
        expected = score_table(question)
        transaction.set_rollback(True)
    assert stored == expected
    assert len({row[:3] for row in stored}) == len(stored) == n_expected  # no duplicates


# --- 2. a worker SIGKILLed mid-refit (the Bayesian model, the aggregators' parameters) ------------------


def resolved_history(n_questions: int = 12, n_forecasters: int = 5) -> list:
    """Resolved yes/no questions, each with every forecaster's forecasts before the resolution (fixed seed)."""
    rng = np.random.default_rng(7)
    editor = editor_user()
    forecasters = UserFactory.create_batch(n_forecasters)
    start = timezone.now() - dt.timedelta(days=40)
    for i in range(n_questions):
        outcome_yes = bool(i % 3)
        question = QuestionFactory(opens_at=start, closes_at=start + dt.timedelta(days=30))
        for j, user in enumerate(forecasters):
            lean = rng.uniform(0.55, 0.95) if (j % 4 != 0) == outcome_yes else rng.uniform(0.05, 0.45)
            PredictionFactory(
                question=question,
                forecaster=user,
                probability=Decimal(f"{lean:.2f}"),
                made_at=start + dt.timedelta(days=1 + j, hours=i),
            )
        Resolution.objects.create(question=question, outcome="yes" if outcome_yes else "no", resolved_by=editor)
        Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
    return forecasters


def kill_while_reading_forecasts(fault_queue: FaultQueue) -> Worker:
    """Start a worker on the published task and SIGKILL it once it waits to read the forecasts table.

    The test holds an exclusive lock on the table (no reads) for the time: the task has started (a
    refit has taken its lease and recorded its run) and is stopped in the middle of its work.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Prediction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        worker = fault_queue()
        assert wait_for(blocked_by_me), f"the worker never reached the forecasts:\n{worker.output()}"
        worker.kill()
        transaction.set_rollback(True)
    return worker


def assert_close(stored: object, expected: object, path: str = "fit") -> None:
    """Equal structures, floats within rounding (the stored fit went through JSON)."""
    if isinstance(expected, dict):
        assert isinstance(stored, dict) and stored.keys() == expected.keys(), path
        for key in expected:
            assert_close(stored[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(stored, list | tuple) and len(stored) == len(expected), path
        for i, (a, b) in enumerate(zip(stored, expected, strict=True)):
            assert_close(a, b, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert stored == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert stored == expected, path


@needs_postgresql
@needs_redis
def test_worker_killed_mid_bayes_refit_takes_its_lease_back_and_fits_as_undisturbed(fault_queue, settings):
    settings.BAYES_REFIT_DEBOUNCE_SECONDS = 0
    resolved_history()
    open_question = QuestionFactory(title="Still open?")
    for user, p in zip(UserFactory.create_batch(3), ("0.3", "0.6", "0.8"), strict=True):
        services.prediction_create(question=open_question, forecaster=user, probability=Decimal(p))

    fault_queue.publish_only()
    services.bayes_refit_request(reason="fault test")  # commits; the refit task goes to the test's queue
    kill_while_reading_forecasts(fault_queue)
    killed = ModelRun.objects.get()
    assert killed.status == ModelRun.Status.RUNNING  # the dead fit still holds the lease (30 minutes)
    assert ModelSchedule.objects.get().running_id == killed.pk

    # Recovery: the broker hands the unacknowledged message out again, with the same task id, so the new
    # worker takes the lease back at once instead of waiting for it to expire.
    second = fault_queue()
    fitted = wait_for(lambda: ModelRun.objects.filter(status=ModelRun.Status.SUCCEEDED).first(), timeout=60)
    assert fitted, f"the killed refit was never redone:\n{second.output()}"
    killed.refresh_from_db()
    assert (killed.status, killed.error) == (ModelRun.Status.FAILED, services.bayesian.WORKER_STOPPED)
    assert fitted.task_id == killed.task_id and ModelRun.objects.count() == 2
    schedule = ModelSchedule.objects.get()
    assert schedule.running_id is None and schedule.lease_expires_at is None

    # The fit equals an undisturbed fit on the same data, made here.
    data, _ = services.bayesian.bayes_training_data()
    expected = bayes.fit(data, method="map", previous=None).to_dict()
    expected["stack"] = bayes.fit_stack(*services.bayes_stack_training()).as_dict()
    stored = dict(fitted.fit)
    stored.pop("duration_seconds"), expected.pop("duration_seconds")  # wall-clock time, not the fit
    assert_close(stored, expected)

    # And the good run's per-question update followed: the open question's Bayesian aggregate, once, equal
    # to what an undisturbed update gives (which would add no point, being the same).
    snapshot = wait_for(lambda: AggregateSnapshot.objects.filter(question=open_question, method="bayes").first())
    assert snapshot and snapshot.model_run_id == fitted.pk, second.output()
    with transaction.atomic():
        again = services.bayes_aggregate_update(question_id=open_question.pk)
        transaction.set_rollback(True)
    assert again.pk == snapshot.pk
    assert AggregateSnapshot.objects.filter(question=open_question, method="bayes").count() == 1


@needs_postgresql
@needs_redis
def test_worker_killed_mid_aggregator_refit_leaves_nothing_and_the_redelivery_fits_as_undisturbed(fault_queue):
    resolved_history()
    fault_queue.publish_only()
    with transaction.atomic():
        jobs.enqueue("forecasting.tasks.refit_aggregators")
    kill_while_reading_forecasts(fault_queue)
    assert not AggregatorFit.objects.exists()  # its transaction died with it

    second = fault_queue()
    fit = wait_for(lambda: AggregatorFit.objects.filter(method="extremized_logodds").first(), timeout=30)
    assert fit, f"the killed refit was never redone:\n{second.output()}"
    with transaction.atomic():
        expected, _ = services.aggregator_fits_refresh()
        transaction.set_rollback(True)
    assert (fit.method, fit.parameters, fit.questions_used) == (expected.method, expected.parameters, 12)
    assert fit.parameters["factor"] != pytest.approx(1.0)  # really fitted (12 questions >= the minimum)
    time.sleep(VISIBILITY_TIMEOUT + 1)  # a second redelivery would have come by now
    assert AggregatorFit.objects.count() == 2  # once each: the extremizing factor and the learnt pool


@needs_postgresql
@needs_redis
def test_a_refit_whose_database_connection_dies_mid_fit_is_retried_and_succeeds(fault_queue, settings):
    settings.BAYES_REFIT_DEBOUNCE_SECONDS = 0
    resolved_history()
    fault_queue.publish_only()
    services.bayes_refit_request(reason="fault test")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Prediction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        worker = fault_queue()
        blocked = wait_for(blocked_by_me)
        assert blocked, f"the worker never reached the forecasts:\n{worker.output()}"
        with connection.cursor() as cursor:  # a database restart, as the worker sees it
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [blocked])
        transaction.set_rollback(True)

    fitted = wait_for(lambda: ModelRun.objects.filter(status=ModelRun.Status.SUCCEEDED).first(), timeout=60)
    assert fitted, (
        f"the refit never succeeded: {list(ModelRun.objects.values_list('status', 'error'))}\n{worker.output()}"
    )
    schedule = ModelSchedule.objects.get()
    assert schedule.running_id is None and schedule.lease_expires_at is None
    # The run the lost connection stranded is closed as failed by the retry (the same task), not left running.
    assert sorted(ModelRun.objects.values_list("status", flat=True)) == ["failed", "succeeded"]


# --- 4. the database restarted under the web and a worker -------------------------------------------------


def terminate_other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None  # not listening yet


@needs_postgresql
def test_web_requests_recover_by_themselves_after_the_database_drops_every_connection(fault_queue, tmp_path):
    """A gunicorn worker with persistent connections (DB_CONN_MAX_AGE > 0, as in production) keeps one
    connection across requests; a database restart kills it. The next request must still answer."""
    question = QuestionFactory(title="Will the database come back?")
    port = free_port()
    env = {**fault_queue.env, "DB_CONN_MAX_AGE": "600"}
    command = [sys.executable, "-m", "gunicorn", "--workers=1", f"--bind=127.0.0.1:{port}", "webapp.wsgi"]
    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/questions/{question.pk}/"
        assert wait_for(lambda: http_status(url), timeout=15) == 200  # it now holds a persistent connection
        assert terminate_other_backends() >= 1
        started = time.monotonic()
        status = http_status(url)
        assert status == 200, (
            f"the first request after the restart answered {status}:\n"
            + ((tmp_path / "gunicorn.log").read_text(errors="replace")[-3000:])
        )
        print(f"web answered {time.monotonic() - started:.2f} s after the restart")
    finally:
        server.terminate()
        server.wait(timeout=10)


@needs_postgresql
def test_a_worker_recovers_by_itself_after_the_database_drops_every_connection(fault_queue):
    editor = editor_user()
    questions = QuestionFactory.create_batch(2)
    for question in questions:
        PredictionFactory(question=question, forecaster=UserFactory(), probability=Decimal("0.8"))
    worker = fault_queue(DB_CONN_MAX_AGE="600")  # a persistent connection, as in production

    services.question_resolve(question=questions[0], actor=editor, outcome="yes")
    assert wait_for(lambda: Score.objects.filter(question=questions[0]).count() == 8), worker.output()

    # Celery's Django fixup closes the worker's connections after each task (CELERY_DB_REUSE_MAX unset),
    # so whatever the worker (or its result backend) still holds dies here; its next task must not care.
    terminate_other_backends()
    started = time.monotonic()
    services.question_resolve(question=questions[1], actor=editor, outcome="no")
    recovered = wait_for(lambda: Score.objects.filter(question=questions[1]).count() == 8)
    assert recovered, f"the worker's next task never succeeded:\n{worker.output()}"
    print(f"worker's next task done {time.monotonic() - started:.2f} s after the restart")
