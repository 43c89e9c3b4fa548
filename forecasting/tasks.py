"""Celery tasks: thin wrappers that take ids and recompute from the database."""

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def score_question(question_id: int) -> int:
    """Recompute every forecaster's scores on one question (idempotent)."""
    return services.question_scores_recompute(question_id=question_id)
