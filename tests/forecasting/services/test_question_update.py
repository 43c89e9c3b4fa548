"""Editing a question (services.question_update): a draft may change everything; once opened, only its
wording, source, placement and close date; every real change is audited, a no-op records nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from forecasting import services
from forecasting.models import Question, QuestionEvent
from tests.factories import ArticleFactory, QuestionFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


def _labels(question: Question) -> list[str]:
    return list(question.options.order_by("position").values_list("label", flat=True))


def test_a_draft_changes_everything_and_the_event_names_the_fields(editor):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    later = draft.opens_at + dt.timedelta(days=2)
    services.question_update(
        question=draft,
        actor=editor,
        title="  Who will host the talks?  ",
        fine_print="Venue as announced by both governments.",
        question_type=Question.Type.MULTIPLE_CHOICE,
        options=["Oman", "Qatar", ""],
        opens_at=later,
    )
    draft.refresh_from_db()
    assert draft.title == "Who will host the talks?"
    assert draft.question_type == Question.Type.MULTIPLE_CHOICE and draft.opens_at == later
    assert _labels(draft) == ["Oman", "Qatar"]
    event = draft.events.get()
    assert (event.action, event.actor, event.from_status, event.to_status) == ("edited", editor, "draft", "draft")
    assert event.note == "Changed title, fine print, open date, type, options."


def test_a_draft_turned_yes_no_loses_its_options(editor):
    draft = multiple_choice_question(status=Question.Status.DRAFT, labels=("A", "B"))
    services.question_update(question=draft, actor=editor, question_type=Question.Type.BINARY)
    assert draft.options.count() == 0
    assert Question.objects.get(pk=draft.pk).is_binary


def test_an_open_question_changes_its_wording_placement_and_close_date(editor, opened_question):
    later = opened_question.closes_at + dt.timedelta(days=7)
    services.question_update(
        question=opened_question,
        actor=editor,
        resolution_criteria="Resolves YES if both sides sign.",
        resolution_source="https://un.example/press",
        paragraph=2,
        closes_at=later,
        note="Clarified after a reader asked.",
    )
    opened_question.refresh_from_db()
    assert opened_question.status == Question.Status.OPEN
    assert (opened_question.resolution_source, opened_question.paragraph, opened_question.closes_at) == (
        "https://un.example/press",
        2,
        later,
    )
    note = opened_question.events.get(action="edited").note
    assert (
        note == "Changed resolution criteria, resolution source, paragraph, close date. Clarified after a reader asked."
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("question_type", Question.Type.MULTIPLE_CHOICE),
        ("options", ["Yes, fully", "Partly"]),
        ("opens_at", timezone.now() - dt.timedelta(days=5)),
    ],
)
def test_once_opened_type_options_and_open_date_are_refused_on_their_field(editor, opened_question, field, value):
    with pytest.raises(ValidationError) as caught:
        services.question_update(question=opened_question, actor=editor, **{field: value})
    assert field in caught.value.message_dict
    assert not opened_question.events.filter(action="edited").exists()


def test_the_same_values_once_opened_are_not_changes(editor):
    question = services.question_open(
        question=multiple_choice_question(status=Question.Status.DRAFT, labels=("A", "B")), actor=editor
    )
    # What the edit form sends back for its disabled fields: the current values.
    services.question_update(
        question=question,
        actor=editor,
        question_type=question.question_type,
        options=["A", "B"],
        opens_at=question.opens_at,
        title=question.title,
    )
    assert not question.events.filter(action="edited").exists()


def test_an_open_question_cannot_close_in_the_past(editor, opened_question):
    with pytest.raises(ValidationError) as caught:
        services.question_update(
            question=opened_question, actor=editor, closes_at=timezone.now() - dt.timedelta(minutes=1)
        )
    assert "closes_at" in caught.value.message_dict
    assert Question.objects.get(pk=opened_question.pk).closes_at == opened_question.closes_at


def test_a_closed_question_may_move_its_close_date_to_reopen_later(editor, opened_question):
    services.question_close(question=opened_question, actor=editor)
    later = timezone.now() + dt.timedelta(days=3)
    services.question_update(question=opened_question, actor=editor, closes_at=later)
    services.question_open(question=opened_question, actor=editor)
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.OPEN


def test_validation_is_the_same_as_creating(editor):
    article = ArticleFactory()
    QuestionFactory(article=article, title="Taken?")
    question = QuestionFactory(article=article, status=Question.Status.DRAFT)
    with pytest.raises(ValidationError) as caught:
        services.question_update(
            question=question,
            actor=editor,
            title="Taken?",
            resolution_criteria="   ",
            closes_at=question.opens_at,
            paragraph=0,
            question_type=Question.Type.MULTIPLE_CHOICE,
            options=["Only one"],
        )
    assert set(caught.value.message_dict) == {"title", "resolution_criteria", "closes_at", "paragraph", "options"}


def test_an_edit_that_changes_nothing_records_nothing(editor, opened_question):
    services.question_update(question=opened_question, actor=editor, title=f" {opened_question.title} ")
    assert not QuestionEvent.objects.filter(action="edited").exists()


def test_readers_may_not_edit(reader, opened_question):
    with pytest.raises(PermissionDenied):
        services.question_update(question=opened_question, actor=reader, title="Hijacked?")
    assert Question.objects.get(pk=opened_question.pk).title != "Hijacked?"


def test_an_unknown_field_is_a_programming_error(editor, opened_question):
    with pytest.raises(TypeError):
        services.question_update(question=opened_question, actor=editor, status="resolved")
