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
