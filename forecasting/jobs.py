"""Background work, queued by name: the one way services start Celery tasks.

Services call ``enqueue("forecasting.tasks.score_question", question_id)`` instead of importing
the task functions, so imports point one way (tasks -> services) and the task modules stay thin.
A task is sent only after the current transaction commits: the worker must see what the
transaction wrote, and a rolled-back action queues nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import current_app
from django.db import transaction


@dataclass(frozen=True)
class QueuedTask:
    """A task to send once the transaction commits (the on-commit callback itself)."""

    name: str
    args: tuple = ()
    countdown: float | None = None

    def __call__(self) -> None:
        # The registry holds the task function's own object, so a test can patch its apply_async.
        current_app.tasks[self.name].apply_async(self.args, countdown=self.countdown)


def enqueue(task_name: str, *args, countdown: float | None = None) -> None:
    """Send the task ``task_name`` with ``args`` once the current transaction commits."""
    transaction.on_commit(QueuedTask(task_name, args, countdown))
