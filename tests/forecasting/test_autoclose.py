"""Questions close by themselves at their close date (services.questions_close_due, the beat task
forecasting.tasks.close_due_questions): through the editor's close transition (the market closes too),
audited as the system's, exactly once however often or late the scheduler runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from forecasting import services, tasks
from forecasting.models import Question, QuestionEvent
from forecasting.signals import question_status_changed
from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def due(editor):
    question = services.question_open(question=QuestionFactory(status=Question.Status.DRAFT), actor=editor)
    Question.objects.filter(pk=question.pk).update(closes_at=timezone.now() - dt.timedelta(minutes=5))
    return question


def test_a_due_question_closes_as_the_system(due):
    assert services.questions_close_due() == [due.pk]
    due.refresh_from_db()
    assert due.status == Question.Status.CLOSED
    event = due.events.get(action="closed")
    assert (event.actor, event.automatic, event.from_status, event.to_status) == (None, True, "open", "closed")
    assert event.note == "Closed automatically at its close date."


def test_the_status_signal_is_sent_and_the_market_closes(due):
    seen = []

    def receiver(sender, *, question, **kwargs):
        seen.append((question.pk, question.status))

    question_status_changed.connect(receiver, dispatch_uid="test-autoclose")
    try:
        services.questions_close_due()
    finally:
        question_status_changed.disconnect(dispatch_uid="test-autoclose")
    assert seen == [(due.pk, Question.Status.CLOSED)]
    assert Question.objects.get(pk=due.pk).market.status == "closed"  # the market app's receiver followed


def test_running_twice_or_late_closes_once_with_one_event(due):
    late = timezone.now() + dt.timedelta(hours=6)
    assert services.questions_close_due() == [due.pk]
    assert services.questions_close_due() == []
    assert services.questions_close_due(now=late) == []
    assert QuestionEvent.objects.filter(question=due, action="closed").count() == 1


def test_only_open_questions_past_their_date_close(editor, due):
    not_yet = QuestionFactory(closes_at=timezone.now() + dt.timedelta(minutes=5))
    draft = QuestionFactory(
        status=Question.Status.DRAFT,
        opens_at=timezone.now() - dt.timedelta(days=3),
        closes_at=timezone.now() - dt.timedelta(days=1),
    )
    assert services.questions_close_due() == [due.pk]
    assert Question.objects.get(pk=not_yet.pk).status == Question.Status.OPEN
    assert Question.objects.get(pk=draft.pk).status == Question.Status.DRAFT


def test_a_question_reopened_with_a_later_date_is_not_closed_early(editor, due):
    services.questions_close_due()
    services.question_update(question=due, actor=editor, closes_at=timezone.now() + dt.timedelta(days=2))
    services.question_open(question=due, actor=editor, note="Talks extended.")
    assert services.questions_close_due() == []
    assert Question.objects.get(pk=due.pk).status == Question.Status.OPEN
    # ... and closes once its new date comes.
    assert services.questions_close_due(now=timezone.now() + dt.timedelta(days=3)) == [due.pk]
    assert QuestionEvent.objects.filter(question=due, action="closed", automatic=True).count() == 2


def test_an_editors_close_is_not_automatic(editor, opened_question):
    services.question_close(question=opened_question, actor=editor)
    event = opened_question.events.get(action="closed")
    assert (event.actor, event.automatic) == (editor, False)


def test_one_failing_question_does_not_keep_the_others_open(due, monkeypatch):
    other = QuestionFactory(closes_at=timezone.now() - dt.timedelta(minutes=1))

    def broken(sender, *, question, **kwargs):
        if question.pk == due.pk:
            raise RuntimeError("market down")

    question_status_changed.connect(broken, dispatch_uid="test-autoclose-broken")
    try:
        assert services.questions_close_due() == [other.pk]
    finally:
        question_status_changed.disconnect(dispatch_uid="test-autoclose-broken")
    assert Question.objects.get(pk=due.pk).status == Question.Status.OPEN  # rolled back; the next run retries
    assert not QuestionEvent.objects.filter(question=due, action="closed").exists()


def test_the_beat_task_closes_due_questions(due):
    assert tasks.close_due_questions.delay().get() == [due.pk]
    assert Question.objects.get(pk=due.pk).status == Question.Status.CLOSED
