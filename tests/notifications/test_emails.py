"""E-mails go out at most once per notification: a refused recipient fails its row only, a broken
connection leaves the rest pending for ``send_pending_emails``, and a row claimed is never sent again."""

import datetime as dt
import smtplib
import threading
import time

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection, transaction
from django.utils import timezone

from notifications import emails, services, tasks
from notifications.models import EmailStatus, Kind, Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def pending(users, kind=Kind.COMMENT_REPLY, key="reply:1"):
    services.notifications_create(
        drafts=[services.Draft(u.pk, kind, key, f"Hello {u.username}", "/questions/1/", "Body.") for u in users]
    )
    return Notification.objects.order_by("id")


class FailingBackend(EmailBackend):
    """locmem, but the n-th message (counted across connections) raises ``error``."""

    calls = 0
    fail_at: int = 3
    error: Exception = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    def send_messages(self, messages):
        type(self).calls += 1
        if type(self).calls == self.fail_at:
            raise self.error
        return super().send_messages(messages)


@pytest.fixture
def failing(settings):
    FailingBackend.calls = 0
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    return FailingBackend


def test_each_email_has_text_html_and_one_click_unsubscribe_headers(settings):
    (alice,) = UserFactory.create_batch(1)
    pending([alice])
    assert emails.emails_send() == 1
    (message,) = mail.outbox
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://forecasts.example/notifications/unsubscribe/") and unsubscribe.endswith(
        "/>"
    )
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and unsubscribe[1:-1] in html
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert "https://forecasts.example/questions/1/" in message.body
    row = Notification.objects.get()
    assert row.email_status == EmailStatus.SENT and row.emailed_at is not None


def test_a_broken_connection_mid_batch_fails_that_row_and_leaves_the_rest_for_later(failing, settings):
    users = UserFactory.create_batch(5)
    rows = pending(users)
    assert emails.emails_send() == 2
    status = [r.email_status for r in rows.all()]
    assert status == [EmailStatus.SENT, EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.PENDING, EmailStatus.PENDING]
    assert len(mail.outbox) == 2

    # The beat's retry sends the pending ones only: nobody gets two, the failed one is not retried.
    assert tasks.send_pending_emails()["sent"] == 2
    assert tasks.send_pending_emails()["sent"] == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for i, u in enumerate(users) if i != 2)
    assert [r.email_status for r in rows.all()].count(EmailStatus.SENT) == 4


def test_a_refused_recipient_fails_its_row_only(failing):
    failing.error = smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"No such user")})
    try:
        rows = pending(UserFactory.create_batch(4))
        assert emails.emails_send() == 3
    finally:
        failing.error = FailingBackend.__dict__["error"]
    assert [r.email_status for r in rows.all()].count(EmailStatus.FAILED) == 1
    assert len(mail.outbox) == 3


def test_an_smtp_server_that_is_down_leaves_everything_pending(settings, monkeypatch):
    def refuse(self):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(EmailBackend, "open", refuse, raising=False)
    rows = pending(UserFactory.create_batch(3))
    assert emails.emails_send() == 0
    assert {r.email_status for r in rows.all()} == {EmailStatus.PENDING}
    monkeypatch.undo()
    assert tasks.send_pending_emails()["sent"] == 3
    assert len(mail.outbox) == 3


def test_a_row_claimed_by_a_sender_that_died_is_never_sent_again():
    rows = pending(UserFactory.create_batch(2))
    claimed = services.notification_emails_claim(limit=1)  # ... and the process dies before sending
    assert [r.pk for r in claimed] == [rows[0].pk]
    assert tasks.send_pending_emails()["sent"] == 1
    assert tasks.send_pending_emails()["sent"] == 0
    assert rows.get(pk=rows[0].pk).email_status == EmailStatus.SENDING
    assert len(mail.outbox) == 1


def test_pending_emails_older_than_two_days_are_skipped_not_sent():
    rows = pending(UserFactory.create_batch(2))
    Notification.objects.filter(pk=rows[0].pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    assert tasks.send_pending_emails() == {"expired": 1, "sent": 1}
    assert rows.get(pk=rows[0].pk).email_status == EmailStatus.SKIPPED


def test_a_recipient_who_unsubscribed_or_left_since_gets_no_email():
    left, unsubscribed, stays = UserFactory.create_batch(3)
    pending([left, unsubscribed, stays])
    left.is_active = False
    left.save()
    services.email_unsubscribe(user_id=unsubscribed.pk, kind=Kind.COMMENT_REPLY)
    assert emails.emails_send() == 1
    assert [m.to for m in mail.outbox] == [[stays.email]]


def test_one_smtp_connection_per_batch(monkeypatch):
    from notifications.services import core

    opened = []
    original = EmailBackend.open if hasattr(EmailBackend, "open") else None

    def track(self):
        opened.append(self)
        return original(self) if original else None

    monkeypatch.setattr(EmailBackend, "open", track, raising=False)
    pending(UserFactory.create_batch(7))
    assert emails.emails_send(batch_size=3) == 7
    assert len(opened) == 3  # 3 + 3 + 1
    assert core.EMAIL_BATCH == 100


@pytest.mark.django_db(transaction=True)
# Runs in CI (PostgreSQL); SQLite, the local default, has no row locks to race on.
@pytest.mark.skipif(not connection.features.has_select_for_update_skip_locked, reason="needs row locks (PostgreSQL)")
def test_two_senders_never_claim_the_same_row():
    rows = list(pending(UserFactory.create_batch(4)))
    locked, release = threading.Event(), threading.Event()

    def other_sender_mid_claim():
        try:
            with transaction.atomic():
                list(Notification.objects.select_for_update().filter(pk__in=[rows[0].pk, rows[1].pk]))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=other_sender_mid_claim)
    other.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        claimed = services.notification_emails_claim(limit=10)  # skips the locked rows, does not wait
        assert time.monotonic() - started < 5
    finally:
        release.set()
        other.join()
    assert [r.pk for r in claimed] == [rows[2].pk, rows[3].pk]
