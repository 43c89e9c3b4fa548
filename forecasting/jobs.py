"""Background work, queued by name: the one way services start Celery tasks (a transactional outbox).

Services call ``enqueue("forecasting.tasks.score_question", question_id)`` instead of importing
the task functions, so imports point one way (tasks -> services) and the task modules stay thin.

``enqueue`` writes an ``OutboxTask`` row in the caller's transaction, so the task is committed
with the work that needs it, and a rolled-back action queues nothing. Once the transaction
commits, the row is published to the broker (the worker must see what the transaction wrote) and
marked sent. Publishing never raises: if the broker is unreachable, the error is logged on the row
and the request that asked for the task still succeeds; the periodic ``outbox_flush`` task
(``services.outbox_flush``) publishes the row when the broker is back.

Both publishers lock the row (``select_for_update(skip_locked=True)``) and re-check that it is
unsent, so the after-commit publisher and a flusher never send the same row twice. A process that
dies between publishing and marking the row sent leaves it unsent, so it is sent again: delivery is
at least once, and every task is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from celery import current_app
from celery.exceptions import NotRegistered
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import EncodeError

from .models import OutboxTask

logger = logging.getLogger(__name__)

# Errors that retrying cannot fix: the row is given up (``failed_at``) and kept for an operator.
PERMANENT_ERRORS = (NotRegistered, KeyError, EncodeError, TypeError, ValueError)


@dataclass(frozen=True)
class QueuedTask:
    """Tasks to publish once the transaction commits (the on-commit callback itself)."""

    name: str
    args: tuple = ()
    countdown: float | None = None
    outbox_ids: tuple[int, ...] = ()

    def __call__(self) -> None:
        publish_rows(self.outbox_ids, countdown=self.countdown)


def enqueue(task_name: str, *args, countdown: float | None = None) -> None:
    """Queue the task ``task_name`` with ``args`` (JSON values): written now, published after commit."""
    enqueue_many(task_name, [args], countdown=countdown)


def enqueue_many(task_name: str, args_list: Iterable[tuple], *, countdown: float | None = None) -> None:
    """Queue ``task_name`` once per argument tuple: one insert, published after commit."""
    now = timezone.now()
    not_before = now + dt.timedelta(seconds=countdown or 0)
    rows = OutboxTask.objects.bulk_create(
        OutboxTask(task_name=task_name, args=list(args), not_before=not_before, created_at=now) for args in args_list
    )
    if rows:
        args = tuple(rows[0].args) if len(rows) == 1 else ()
        transaction.on_commit(QueuedTask(task_name, args, countdown, tuple(row.pk for row in rows)))


def _send(row: OutboxTask, countdown: float | None) -> None:
    # The registry holds the task function's own object, so a test can patch its apply_async.
    current_app.tasks[row.task_name].apply_async(tuple(row.args), countdown=countdown)


def _publish_one(pk: int, countdown: float | None, now: dt.datetime | None) -> bool | None:
    """Publish one row if it is still unsent and nobody else holds it: True if sent, False if the
    broker failed (worth retrying later), None if there was nothing to send or it was given up."""
    with transaction.atomic():
        row = (
            OutboxTask.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, sent_at__isnull=True, failed_at__isnull=True)
            .first()
        )
        if row is None:
            return None
        delay = countdown if countdown is not None else (row.not_before - (now or timezone.now())).total_seconds()
        row.attempts += 1
        try:
            _send(row, delay if delay and delay > 0 else None)
        except Exception as error:  # logged on the row, never raised: the flusher retries it
            row.last_error = f"{type(error).__name__}: {error}"[:2000]
            permanent = isinstance(error, PERMANENT_ERRORS)
            if permanent:
                row.failed_at = timezone.now()
            row.save(update_fields=["attempts", "last_error", "failed_at"])
            logger.warning("Could not publish %s (outbox row %s): %s", row.task_name, row.pk, row.last_error)
            return None if permanent else False
        row.sent_at = timezone.now()
        row.save(update_fields=["attempts", "sent_at"])
        return True


def publish_rows(ids: Iterable[int], *, countdown: float | None = None, now: dt.datetime | None = None) -> int:
    """Publish the unsent rows among ``ids``, in order, each in a short transaction; never raises.

    ``countdown`` overrides the delay (the after-commit path keeps the one asked for); otherwise
    each row waits out what is left of its ``not_before``. Stops at the first broker error (the
    other rows would fail the same way). Returns how many rows were sent.
    """
    sent = 0
    for pk in ids:
        try:
            outcome = _publish_one(pk, countdown, now)
        except Exception:  # a database error must not fail the request either: the flusher retries
            logger.exception("Could not publish outbox row %s", pk)
            break
        if outcome is False:
            break
        sent += bool(outcome)
    return sent
