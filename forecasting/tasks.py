"""Celery tasks: thin wrappers that take ids and recompute from the database (idempotent)."""

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def score_question(question_id: int) -> int:
    """Recompute every forecaster's scores on one question."""
    return services.question_scores_recompute(question_id=question_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def refit_aggregators() -> dict:
    """Refit the learnt aggregation parameters (the extremizing factor) on every resolved question."""
    return {fit.method: fit.parameters for fit in services.aggregator_fits_refresh()}


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def refit_bayes(self, method: str | None = None) -> int | None:
    """Refit the Bayesian forecaster model unless a fit is already running (see services.bayesian)."""
    run = services.bayes_refit_run(task_id=self.request.id or "eager", method=method)
    return run.pk if run else None


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def update_bayes_aggregate(question_id: int) -> int | None:
    """Recompute one question's Bayesian aggregate with the run in use (debounced per question)."""
    snapshot = services.bayes_aggregate_update(question_id=question_id)
    return snapshot.pk if snapshot else None
