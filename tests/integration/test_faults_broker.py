"""The broker down for a while under the web and a worker: nothing is lost, and everything runs exactly
once when it returns (the transactional outbox, forecasting/jobs.py, and its flush, forecasting/services/
outbox.py). Unlike test_broker_outage.py (the app's own publishes, in this process), the web here is a real
gunicorn and the worker a real ``celery worker``, both reaching Redis through a relay that the test cuts and
restores on the same address, as a broker restart or a network partition would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult
from rest_framework.authtoken.models import Token

from forecasting import services
from forecasting.models import AggregateState, AggregatorFit, OutboxTask, Score
from tests.factories import QuestionFactory, UserFactory, editor_user
from tests.integration.test_faults import (
    REPO,
    VISIBILITY_TIMEOUT,
    FaultQueue,
    fault_queue_in,
    free_port,
    http_status,
    needs_redis,
    wait_for,
)
from webapp.celery import app

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]


@pytest.fixture
def fault_queue(tmp_path) -> Iterator[FaultQueue]:
    with fault_queue_in(tmp_path) as faults:
        yield faults


# The outage lasts a few seconds here; bench/broker_outage.py runs this test with a full minute.
BROKER_OUTAGE_SECONDS = float(os.environ.get("FAULT_BROKER_OUTAGE_SECONDS", "3"))


class FlakyBroker:
    """A TCP relay to the real Redis that can be cut (``down``: connections reset, new ones refused,
    as when the broker's host goes away) and restored on the same address (``up``)."""

    def __init__(self, broker_url: str) -> None:
        url = urllib.parse.urlsplit(broker_url)
        self.target = (url.hostname or "127.0.0.1", url.port or 6379)
        self.port = free_port()
        self.url = url._replace(netloc=f"127.0.0.1:{self.port}").geturl()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            self._close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._close(client)
                continue
            client.settimeout(None), upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source), self._close(sink)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def api_post(base: str, path: str, token: str, body: dict) -> int:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@needs_redis
def test_broker_down_for_a_while_loses_nothing_and_everything_runs_once_when_it_returns(fault_queue, tmp_path):
    """The web and a worker reach Redis through a relay that the test cuts for BROKER_OUTAGE_SECONDS.
    Forecasts and resolutions made meanwhile succeed (their tasks wait in the outbox); once the broker
    is back, the web publishes again by itself, the beat's flush publishes what waited, and every task
    runs exactly once: each question scored, each aggregator refit and Bayesian update done."""
    broker = FlakyBroker(str(app.conf.broker_url))
    editor = editor_user()
    readers = UserFactory.create_batch(3)
    tokens = {user.pk: Token.objects.create(user=user).key for user in [editor, *readers]}
    questions = QuestionFactory.create_batch(3)
    late_question = QuestionFactory()
    env = {**fault_queue.env, "CELERY_BROKER_URL": broker.url, "DB_CONN_MAX_AGE": "60"}
    worker = fault_queue(CELERY_BROKER_URL=broker.url)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers=1", f"--bind=127.0.0.1:{port}", "webapp.wsgi"]
    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: http_status(f"{base}/api/v1/questions/"), timeout=15) == 200

        broker.down()
        outage_started = time.monotonic()
        operations = [
            *[("predictions", reader, {"question": q.pk, "probability": p}) for q in questions for reader, p in
              zip(readers, ("0.2", "0.55", "0.9"), strict=True)],
            ("resolve", editor, questions[0]),
            ("resolve", editor, questions[1]),
        ]  # fmt: skip
        for kind, user, what in operations:
            if kind == "predictions":
                status = api_post(base, "/api/v1/predictions/", tokens[user.pk], what)
            else:
                status = api_post(base, f"/api/v1/questions/{what.pk}/resolve/", tokens[user.pk], {"outcome": "yes"})
            assert status in (200, 201), f"{kind} answered {status} during the outage"
            time.sleep(BROKER_OUTAGE_SECONDS / len(operations))
        assert time.monotonic() - outage_started < BROKER_OUTAGE_SECONDS + 30, "requests hung on the dead broker"
        waiting = OutboxTask.objects.filter(sent_at__isnull=True, failed_at__isnull=True)
        assert waiting.count() == 7  # 3 Bayesian updates (one per question), 2 scorings, 2 aggregator refits
        assert not Score.objects.exists()

        broker.up()
        # The web publishes again by itself: a forecast on a fourth question (no update of its own waiting)
        # is published at once, not at the next flush.
        body = {"question": late_question.pk, "probability": "0.7"}
        assert api_post(base, "/api/v1/predictions/", tokens[readers[0].pk], body) == 201
        late_update = OutboxTask.objects.get(
            task_name="forecasting.tasks.update_bayes_aggregate", args=[late_question.pk]
        )
        assert late_update.sent_at is not None and late_update.attempts == 1, late_update.last_error
        # The beat's flush (every 30 s) leaves rows younger than its grace to their request; these are old.
        OutboxTask.objects.filter(sent_at__isnull=True).update(created_at=timezone.now() - dt.timedelta(minutes=1))
        app.send_task("forecasting.tasks.outbox_flush", queue=fault_queue.queue)

        def everything_done() -> bool:
            scored = all(Score.objects.filter(question=q).count() == 3 * 8 for q in questions[:2])
            return (
                scored
                and AggregatorFit.objects.filter(method="extremized_logodds").count() == 2
                and not waiting.exists()
                and not (AggregateState.objects.filter(bayes_pending=True).exists())
            )

        assert wait_for(everything_done, timeout=90), f"not everything ran:\n{worker.output()}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        broker.down()

    # Exactly once: one successful task per outbox row, and a further flush finds nothing to send.
    time.sleep(VISIBILITY_TIMEOUT + 1)
    ran = Counter(TaskResult.objects.filter(status="SUCCESS").values_list("task_name", flat=True))
    queued = Counter(OutboxTask.objects.values_list("task_name", flat=True))
    assert {name: ran[name] for name in queued} == dict(queued), (ran, queued)
    assert not TaskResult.objects.exclude(status="SUCCESS").exists()
    assert services.outbox_flush(now=timezone.now() + dt.timedelta(minutes=1)) == 0
