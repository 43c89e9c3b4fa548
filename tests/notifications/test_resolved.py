"""A question you forecast resolved (or was annulled): one notice with your scores per resolution and
reader, in the site and by e-mail, however often the scores are recomputed; batched for many readers."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting import services
from forecasting.models import OutboxTask, Question
from notifications import tasks
from notifications.models import Delivery, EmailStatus, Kind, Notification, NotificationPreference
from tests.factories import UserFactory

from .conftest import forecast_question

pytestmark = pytest.mark.django_db


def test_resolving_tells_each_forecaster_the_outcome_and_their_scores(resolve):
    question, (alice, bob) = forecast_question(2)
    resolve(question)

    notices = Notification.objects.filter(kind=Kind.RESOLVED).order_by("recipient_id")
    assert [n.recipient for n in notices] == [alice, bob]
    alices = notices[0]
    assert alices.title == "Resolved: Will it rain?"
    assert alices.url == question.get_absolute_url()
    assert alices.question == question
    assert "It resolved as “Yes”." in alices.body
    assert "Your forecast standing at resolution: 20% yes." in alices.body
    # (1 - 0.2)^2
    assert "- Brier score: 0.6400 (lower is better)" in alices.body
    assert "- Log score:" in alices.body and "- Baseline score:" in alices.body and "- Peer score:" in alices.body
    assert alices.read_at is None and alices.email_status == EmailStatus.SENT

    assert sorted(m.to[0] for m in mail.outbox) == sorted([alice.email, bob.email])
    message = next(m for m in mail.outbox if m.to == [alice.email])
    assert message.subject == "Resolved: Will it rain?"
    assert "Brier score: 0.6400" in message.body
    assert "https://forecasts.example" + question.get_absolute_url() in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "Brier score: 0.6400" in html


def test_the_outbox_queues_the_notice_with_the_scores(editor, django_capture_on_commit_callbacks):
    """The receiver writes the task's outbox row in the recompute's transaction."""
    question, _ = forecast_question(1)
    with django_capture_on_commit_callbacks(execute=False):
        services.question_resolve(question=question, actor=editor, outcome="yes")
        services.question_scores_recompute(question_id=question.pk)
    assert OutboxTask.objects.filter(
        task_name="notifications.tasks.notify_question_resolved", args=[question.pk]
    ).exists()


def test_recomputing_the_scores_or_running_the_task_twice_notifies_nobody_twice(resolve, run_commits):
    question, _readers = forecast_question(3)
    resolve(question)
    with run_commits():
        services.question_scores_recompute(question_id=question.pk)
    tasks.notify_question_resolved(question.pk)
    tasks.notify_question_resolved(question.pk)
    assert Notification.objects.count() == 3
    assert len(mail.outbox) == 3


def test_un_resolving_then_resolving_again_is_news(resolve, editor, run_commits):
    question, _readers = forecast_question(2)
    resolve(question)
    with run_commits():
        services.question_unresolve(question=question, actor=editor)
    assert Notification.objects.count() == 2  # un-resolving tells nobody
    resolve(question, outcome="no")
    assert Notification.objects.count() == 4
    assert Notification.objects.filter(body__contains="It resolved as “No”.").count() == 2
    assert len(mail.outbox) == 4


def test_a_late_task_after_a_re_resolution_waits_for_the_new_scores(resolve, editor, run_commits):
    question, _ = forecast_question(2)
    resolve(question)
    Notification.objects.all().delete()
    with run_commits():
        services.question_unresolve(question=question, actor=editor)
    # Resolved again, but its scores not yet recomputed: the old task finds no scores of this resolution.
    services.question_resolve(question=question, actor=editor, outcome="no")
    tasks.notify_question_resolved(question.pk)
    assert not Notification.objects.exists()


def test_an_annulled_question_tells_its_forecasters_nobody_is_scored(editor, run_commits):
    question, _readers = forecast_question(2)
    with run_commits():
        services.question_annul(question=question, actor=editor)
    notices = Notification.objects.filter(kind=Kind.RESOLVED)
    assert notices.count() == 2
    assert all(n.title == "Annulled: Will it rain?" and "nobody is scored" in n.body for n in notices)
    assert len(mail.outbox) == 2


def test_preferences_are_honoured(resolve):
    question, (by_email, site_only, off, no_address, inactive) = forecast_question(5)
    NotificationPreference.objects.create(user=site_only, resolved=Delivery.SITE)
    NotificationPreference.objects.create(user=off, resolved=Delivery.OFF)
    no_address.email = ""
    no_address.save()
    inactive.is_active = False
    inactive.save()
    resolve(question)

    status = dict(Notification.objects.values_list("recipient_id", "email_status"))
    assert status == {
        by_email.pk: EmailStatus.SENT,
        site_only.pk: EmailStatus.SKIPPED,
        no_address.pk: EmailStatus.SKIPPED,
    }
    assert [m.to for m in mail.outbox] == [[by_email.email]]


def _notify_queries(n: int, question_title: str) -> int:
    question, _ = forecast_question(n, title=question_title)
    services.question_resolve(question=question, actor=UserFactory(is_superuser=True), outcome="yes")
    services.question_scores_recompute(question_id=question.pk)
    mail.outbox.clear()
    with CaptureQueriesContext(connection) as queries:
        tasks.notify_question_resolved(question.pk)
    assert Notification.objects.filter(question=question).count() == n
    assert len(mail.outbox) == n
    return len(queries)


def test_the_query_count_does_not_grow_with_the_readers():
    few = _notify_queries(5, "Five readers?")
    many = _notify_queries(50, "Fifty readers?")
    assert many == few, f"{few} queries for 5 readers, {many} for 50"
    assert few <= 20


def test_many_readers_are_written_in_chunks(resolve, monkeypatch):
    from notifications.services import core, events

    monkeypatch.setattr(events, "CHUNK", 4)
    monkeypatch.setattr(core, "EMAIL_BATCH", 3)
    question, readers = forecast_question(10)
    resolve(question)
    assert Notification.objects.count() == 10
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers)


def test_a_draft_question_tells_nobody(run_commits):
    question, _ = forecast_question(1)
    Question.objects.filter(pk=question.pk).update(published_at=None, status=Question.Status.RESOLVED)
    assert tasks.notify_question_resolved(question.pk) == 0
    assert not Notification.objects.exists()
