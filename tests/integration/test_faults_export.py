"""A web worker SIGKILLed in the middle of an analyst's download.

Downloads are not built by a task: the web process streams them (forecasting/io/exports, a ZIP
written as it goes, sent with chunked transfer encoding), so nothing is stored and there is no
half-written file on disk to serve later. What must hold is on the wire: a download cut short can
never pass for a whole one (the chunked stream ends without its last chunk, so the client sees an
error, and a ZIP without its central directory does not open), and downloading again gives the
same tables as an undisturbed download.

The worker is stopped at a known point: the test holds an exclusive lock on the scores table, which
the ZIP writes after the questions (made large enough that the first chunks are already sent), and
kills the gunicorn worker once its query waits on that lock. PostgreSQL (CI) for the lock.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from forecasting import services
from forecasting.models import Question, Resolution, Score
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, analyst_user, editor_user
from tests.integration.test_faults import (
    REPO,
    blocked_by_me,
    database_url,
    free_port,
    http_status,
    needs_postgresql,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_password_hashing")]

STREAM_CHUNK_BYTES = 256 * 1024  # forecasting/io/exports/csv_zip.py: what the ZIP gathers before sending


def newsroom_with_long_questions() -> None:
    """Questions whose resolution criteria (hardly compressible text) fill more than one chunk of the
    ZIP, and a resolved, scored question so that the scores table has rows."""
    rng = np.random.default_rng(11)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "))
    for _ in range(40):
        criteria = "".join(rng.choice(letters, size=12_000))
        question = QuestionFactory(resolution_criteria=criteria)
        PredictionFactory(question=question, forecaster=UserFactory(), probability=Decimal("0.4"))
    resolved = QuestionFactory()
    for p in ("0.2", "0.7", "0.9"):
        PredictionFactory(question=resolved, forecaster=UserFactory(), probability=Decimal(p))
    Resolution.objects.create(question=resolved, outcome=Resolution.Outcome.YES, resolved_by=editor_user())
    Question.objects.filter(pk=resolved.pk).update(status=Question.Status.RESOLVED)
    services.question_scores_recompute(question_id=resolved.pk)
    assert Score.objects.exists()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Download(threading.Thread):
    """One download, read as it arrives; ``received`` grows, ``error`` is how it ended badly (if it did)."""

    def __init__(self, url: str, cookie: str) -> None:
        super().__init__(daemon=True)
        self.request = urllib.request.Request(url, headers={"Cookie": cookie})
        self.received = bytearray()
        self.headers: dict[str, str] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.request, timeout=60) as response:
                self.headers = dict(response.headers)
                while data := response.read1(65536):
                    self.received += data
        except (http.client.HTTPException, OSError) as error:
            self.error = error

    def body(self) -> bytes:
        self.start()
        self.join(timeout=90)
        assert self.error is None, self.error
        return bytes(self.received)


def tables(zip_bytes: bytes) -> dict[str, bytes]:
    """Each file of the ZIP; the README without its "Exported at" moment (a new download, a new moment)."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["README.md"] = re.sub(rb"\*\*Exported at:\*\* [^(]*", b"", files["README.md"])
    return files


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


@needs_postgresql
def test_a_download_cut_by_a_killed_web_worker_never_looks_whole_and_the_retry_equals_an_undisturbed_one(tmp_path):
    newsroom_with_long_questions()
    cookie = session_cookie(analyst_user())
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", "DATABASE_URL": database_url()}
    command = [sys.executable, "-m", "gunicorn", "--workers=1", f"--bind=127.0.0.1:{port}", "webapp.wsgi"]
    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/downloads/all/"
    try:
        assert wait_for(lambda: http_status(f"http://127.0.0.1:{port}/"), timeout=15) == 200
        undisturbed = Download(url, cookie).body()
        assert "scores.csv" in tables(undisturbed)

        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Score._meta.db_table} IN ACCESS EXCLUSIVE MODE")
            cut = Download(url, cookie)
            cut.start()
            assert wait_for(blocked_by_me), "the download never reached the scores"
            # Mid-export for real: the client already holds the first chunks of the file.
            assert wait_for(lambda: len(cut.received) >= STREAM_CHUNK_BYTES), len(cut.received)
            (worker,) = worker_pids(server.pid)
            os.kill(worker, signal.SIGKILL)
            cut.join(timeout=30)
            transaction.set_rollback(True)

        assert not cut.is_alive()
        assert cut.headers.get("Transfer-Encoding") == "chunked"  # so an early end is detectable
        assert isinstance(cut.error, http.client.IncompleteRead | ConnectionError), cut.error
        assert 0 < len(cut.received) < len(undisturbed)
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(bytes(cut.received)))

        # gunicorn's master starts a new worker; the same download again is whole and the same.
        retried = wait_for(lambda: http_status(f"http://127.0.0.1:{port}/") == 200 and Download(url, cookie).body())
        assert retried, (tmp_path / "gunicorn.log").read_text(errors="replace")[-3000:]
        assert tables(retried) == tables(undisturbed)
    finally:
        server.terminate()
        server.wait(timeout=10)
