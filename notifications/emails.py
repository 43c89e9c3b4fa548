"""E-mails from notification rows: rendered from templates (plain text and HTML), sent in batches over one
SMTP connection each, at most once per row.

A batch is claimed first (``services.notification_emails_claim``: the rows become "sending" and that is
committed), then sent, then recorded. A crash after the claim leaves rows "sending", and those are never
sent again: a reader may miss an e-mail (the in-site item stays) but never gets two. A refused recipient
fails that row only; a broken connection fails the row being sent (it may have gone out) and puts the
rest of the batch back to pending, for ``send_pending_emails`` to try again.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse

from . import services
from .models import Kind, Notification

logger = logging.getLogger(__name__)

# Errors about one message (the server refused this recipient or this message): the others still go.
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused)


def unsubscribe_url(*, user_id: int, kind: str) -> str:
    token = services.unsubscribe_token(user_id=user_id, kind=kind)
    return settings.SITE_URL + reverse("notification_unsubscribe", kwargs={"token": token})


def message_for(notification: Notification, connection=None) -> EmailMultiAlternatives:
    """The e-mail of one notification: text and HTML, with RFC 8058 one-click unsubscribe headers."""
    unsubscribe = unsubscribe_url(user_id=notification.recipient_id, kind=notification.kind)
    context = {
        "notification": notification,
        "recipient": notification.recipient,
        "link": settings.SITE_URL + notification.url,
        "kind_label": Kind(notification.kind).label,
        "unsubscribe_url": unsubscribe,
        "preferences_url": settings.SITE_URL + reverse("notification_preferences"),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=" ".join(notification.title.split())[:200],  # a header: no line breaks
        body=render_to_string("notifications/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient.email],
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        connection=connection,
    )
    message.attach_alternative(render_to_string("notifications/email/notification.html", context), "text/html")
    return message


def _send_batch(rows: list[Notification]) -> tuple[int, bool]:
    """Send one claimed batch over one connection; returns (how many were sent, whether to go on)."""
    sent: list[int] = []
    failed: list[int] = []
    released = [row.pk for row in rows]
    connection = get_connection()
    try:
        connection.open()
        for row in rows:
            released.remove(row.pk)
            try:
                connection.send_messages([message_for(row, connection)])
            except MESSAGE_ERRORS:
                logger.exception("E-mail of notification %s refused", row.pk)
                failed.append(row.pk)
                continue
            except Exception:
                # The connection broke: this one may have gone out (never resent), the rest wait.
                logger.exception("E-mail of notification %s failed; %s left for later", row.pk, len(released))
                failed.append(row.pk)
                return len(sent), False
            sent.append(row.pk)
    except Exception:  # opening the connection: nothing was handed to the server
        logger.exception("Could not connect to send %s e-mails; left for later", len(released))
        return len(sent), False
    finally:
        try:
            connection.close()
        except Exception:
            logger.warning("Closing the mail connection failed", exc_info=True)
        services.notification_emails_finish(sent=sent, failed=failed, released=released)
    return len(sent), True


def emails_send(*, kind: str | None = None, key: str | None = None, batch_size: int = services.EMAIL_BATCH) -> int:
    """Send the pending e-mails (of ``kind``, of ``key``, or all), a batch at a time; returns how many were sent."""
    total = 0
    while rows := services.notification_emails_claim(kind=kind, key=key, limit=batch_size):
        sent, go_on = _send_batch(rows)
        total += sent
        if not go_on:
            break
    return total


def emails_send_pending() -> dict:
    """What a crash or an SMTP outage left pending (the beat's ``send_pending_emails``); too old ones skipped."""
    return {"expired": services.notification_emails_expire(), "sent": emails_send()}
