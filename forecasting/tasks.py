"""Celery tasks: thin wrappers that take ids, recompute from the database and are idempotent.

Services queue them by name through ``forecasting.jobs.enqueue`` (never by importing this
module), so the only import between the two points from tasks to services. The names are
explicit because messages in flight carry them: renaming a module must not orphan its tasks.

Each worker process also warms the Bayesian model up when it starts (``worker_process_init``):
compiling its graphs takes seconds to tens of seconds, which the first refit after a resolution
would otherwise pay. The prefork pool waits for a new process to report in before giving it
work, for ``CELERY_WORKER_PROC_ALIVE_TIMEOUT`` seconds (raised in the settings for this). A
failed warm-up is logged and the worker carries on: the first fit compiles instead.
"""

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import OperationalError

from . import services

logger = logging.getLogger(__name__)

_RETRIED = {"acks_late": True, "autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task(name="forecasting.tasks.score_question", **_RETRIED)
def score_question(question_id: int) -> int:
    """Recompute every forecaster's scores on one question."""
    return services.question_scores_recompute(question_id=question_id)


@shared_task(name="forecasting.tasks.refit_aggregators", **_RETRIED)
def refit_aggregators() -> dict:
    """Refit the learnt aggregation parameters (the extremizing factor, the learnt pool) on every resolved
    question; returns each method's questions used (the learnt pool's records stay in the database)."""
    return {fit.method: fit.questions_used for fit in services.aggregator_fits_refresh()}


# Retried like the others: a database connection lost mid-fit (a restart) would otherwise leave the run
# "running" and its lease held, and the refit asked for never done. The retry keeps the task id, so it
# takes its own lease back at once (services.bayesian.bayes_refit_run).
@shared_task(name="forecasting.tasks.refit_bayes", bind=True, reject_on_worker_lost=True, **_RETRIED)
def refit_bayes(self, method: str | None = None) -> int | None:
    """Refit the Bayesian forecaster model unless a fit is already running (see services.bayesian)."""
    run = services.bayes_refit_run(task_id=self.request.id or "eager", method=method)
    return run.pk if run else None


@shared_task(name="forecasting.tasks.update_bayes_aggregate", **_RETRIED)
def update_bayes_aggregate(question_id: int) -> int | None:
    """Recompute one question's Bayesian aggregate with the run in use (debounced per question)."""
    snapshot = services.bayes_aggregate_update(question_id=question_id)
    return snapshot.pk if snapshot else None


@shared_task(name="forecasting.tasks.outbox_flush")
def outbox_flush() -> dict:
    """Publish the background tasks a broker outage left in the outbox, and prune old sent ones (beat)."""
    return {"sent": services.outbox_flush(), "pruned": services.outbox_prune()}


@shared_task(name="forecasting.tasks.sweep_unfinished")
def sweep_unfinished() -> dict:
    """Re-queue work whose task was lost: Bayesian updates that stay pending, a lost refit (beat)."""
    return {"bayes_updates": len(services.bayes_pending_sweep()), "bayes_refit": services.bayes_refit_sweep()}


@shared_task(name="forecasting.tasks.close_due_questions")
def close_due_questions() -> list[int]:
    """Close the open questions whose close date has come, as the system (beat, every minute)."""
    return services.questions_close_due()


@worker_process_init.connect(dispatch_uid="forecasting_warm_up_bayes")
def warm_up_bayes(**_kwargs) -> None:
    """Compile the Bayesian model's fit in this worker process (and the NUTS sampler's when it is used)."""
    if not settings.BAYES_WORKER_WARM_UP:
        return
    try:
        logger.info("Bayesian model warm-up (MAP) took %.1f s", services.bayes_warm_up(method="map"))
        if settings.BAYES_FIT_METHOD == "nuts":
            logger.info("Bayesian model warm-up (NUTS) took %.1f s", services.bayes_warm_up(method="nuts"))
    except Exception:  # the worker must start anyway: the first fit compiles instead
        logger.exception("Bayesian model warm-up failed; the first refit will compile the model")
