"""Celery tasks: thin, take ids, idempotent, safe to run late or twice (the rows' keys dedupe them).

Queued by name through ``forecasting.jobs.enqueue`` (``receivers``) or by the beat schedule
(``CELERY_BEAT_SCHEDULE``): the names are explicit because messages in flight carry them. Each writes
its notifications (``services``) and then sends the e-mails they call for (``emails``); a retry after a
failure writes nothing twice and sends only what is still pending.
"""

from celery import shared_task
from django.db import OperationalError

from . import emails, services
from .models import Kind

_RETRIED = {"acks_late": True, "autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task(name="notifications.tasks.notify_question_resolved", **_RETRIED)
def notify_question_resolved(question_id: int) -> int:
    """A question's forecasters: its outcome and their scores (queued after each score recompute)."""
    services.resolution_notify(question_id=question_id)
    return emails.emails_send(kind=Kind.RESOLVED)


@shared_task(name="notifications.tasks.notify_comment_reply", **_RETRIED)
def notify_comment_reply(comment_id: int) -> int:
    """A reply's parent author (queued when the reply is posted)."""
    services.comment_reply_notify(comment_id=comment_id)
    return emails.emails_send(kind=Kind.COMMENT_REPLY)


@shared_task(name="notifications.tasks.notify_closing_soon", **_RETRIED)
def notify_closing_soon() -> int:
    """Forecasters of questions closing within a day (beat, every 15 minutes)."""
    services.closing_soon_notify()
    return emails.emails_send(kind=Kind.CLOSING_SOON)


@shared_task(name="notifications.tasks.notify_community_moved", **_RETRIED)
def notify_community_moved() -> int:
    """Readers the community prediction moved away from (beat, every 15 minutes)."""
    services.community_moved_notify()
    return emails.emails_send(kind=Kind.COMMUNITY_MOVED)


@shared_task(name="notifications.tasks.remind_overdue_resolutions", **_RETRIED)
def remind_overdue_resolutions() -> int:
    """Editors: the day's digest of questions awaiting resolution (beat, daily)."""
    services.overdue_resolutions_notify()
    return emails.emails_send(kind=Kind.OVERDUE_DIGEST)


@shared_task(name="notifications.tasks.remind_stale_forecasts", **_RETRIED)
def remind_stale_forecasts() -> int:
    """Readers whose forecast on an open question has gone stale (beat, daily)."""
    services.stale_forecasts_notify()
    return emails.emails_send(kind=Kind.STALE_FORECAST)


@shared_task(name="notifications.tasks.send_pending_emails", **_RETRIED)
def send_pending_emails() -> dict:
    """E-mails a crash or an SMTP outage left pending (beat, every 5 minutes)."""
    return emails.emails_send_pending()
