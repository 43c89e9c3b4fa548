"""A task that fails part-way (the database drops mid-batch) is retried: nothing is written or sent twice."""

import pytest
from django.core import mail
from django.db import OperationalError

from forecasting import services
from notifications import tasks
from notifications.models import EmailStatus, Notification
from notifications.services import core, events

from .conftest import forecast_question

pytestmark = pytest.mark.django_db


def test_a_task_that_fails_after_its_first_chunk_is_retried_without_duplicates(editor, monkeypatch):
    question, readers = forecast_question(9)
    services.question_resolve(question=question, actor=editor, outcome="yes")
    services.question_scores_recompute(question_id=question.pk)
    monkeypatch.setattr(events, "CHUNK", 4)
    real_create = events.notifications_create
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real_create(**kwargs)

    monkeypatch.setattr(events, "notifications_create", flaky)
    with pytest.raises(OperationalError):
        tasks.notify_question_resolved(question.pk)
    assert Notification.objects.count() == 4  # the first chunk committed; its e-mails wait
    assert not mail.outbox

    # The retry (autoretry_for=OperationalError), and a redelivery of the same message after it.
    tasks.notify_question_resolved(question.pk)
    tasks.notify_question_resolved(question.pk)
    assert Notification.objects.count() == 9
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers)
    assert set(Notification.objects.values_list("email_status", flat=True)) == {EmailStatus.SENT}


def test_a_task_that_dies_while_sending_never_sends_those_again(editor, monkeypatch):
    question, _readers = forecast_question(3)
    services.question_resolve(question=question, actor=editor, outcome="yes")
    services.question_scores_recompute(question_id=question.pk)

    def die(**kwargs):
        raise OperationalError("lost the database while recording the batch")

    monkeypatch.setattr(core, "notification_emails_finish", die)
    monkeypatch.setattr("notifications.services.notification_emails_finish", die)
    with pytest.raises(OperationalError):
        tasks.notify_question_resolved(question.pk)
    assert len(mail.outbox) == 3  # they went out, but were never marked sent
    monkeypatch.undo()
    tasks.notify_question_resolved(question.pk)
    tasks.send_pending_emails()
    assert len(mail.outbox) == 3
    assert set(Notification.objects.values_list("email_status", flat=True)) == {EmailStatus.SENDING}
