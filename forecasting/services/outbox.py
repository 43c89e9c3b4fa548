"""Recovering background work after a broker outage: the outbox flusher and the sweeps.

``jobs.enqueue`` writes each task to the outbox in the caller's transaction and publishes it after
commit; when the broker is unreachable the row stays unsent. The beat task
``forecasting.tasks.outbox_flush`` (every 30 s, ``CELERY_BEAT_SCHEDULE``) calls ``outbox_flush``:
the oldest unsent rows whose countdown has run out are published in short, bounded batches (rows
another flusher holds are skipped, ``skip_locked``) and sent rows are pruned after a day.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..jobs import publish_rows
from ..models import OutboxTask

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_BATCHES = 10  # one flush sends at most 2,000 rows; the next beat carries on
# A row this young is left to the after-commit publisher of the request that wrote it.
GRACE = dt.timedelta(seconds=10)
KEEP_SENT = dt.timedelta(days=1)


def outbox_flush(
    *, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES
) -> int:
    """Publish the outbox rows still unsent (oldest first, bounded); returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for _ in range(max_batches):
        due = list(
            OutboxTask.objects.filter(
                sent_at__isnull=True, failed_at__isnull=True, not_before__lte=now, created_at__lte=now - GRACE
            )
            .order_by("created_at", "id")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not due:
            break
        # publish_rows locks them with skip_locked and re-checks that they are still unsent.
        published = publish_rows(due, now=now)
        sent += published
        if not published:
            break  # the broker is down, or another flusher holds these rows: the next beat retries
    return sent


@transaction.atomic
def outbox_prune(*, now: dt.datetime | None = None, keep: dt.timedelta = KEEP_SENT, limit: int = 10_000) -> int:
    """Delete rows sent more than ``keep`` ago (at most ``limit`` per call); returns how many."""
    cutoff = (now or timezone.now()) - keep
    old = list(OutboxTask.objects.filter(sent_at__lt=cutoff).values_list("pk", flat=True)[:limit])
    deleted, _ = OutboxTask.objects.filter(pk__in=old).delete()
    return deleted


def outbox_recently_queued(*, task_name: str, since: dt.datetime) -> set[tuple]:
    """The argument tuples of ``task_name`` queued since ``since``, or still waiting to be sent."""
    waiting = Q(sent_at__isnull=True, failed_at__isnull=True)
    rows = OutboxTask.objects.filter(Q(created_at__gte=since) | waiting, task_name=task_name)
    return {tuple(args) for args in rows.values_list("args", flat=True)}
