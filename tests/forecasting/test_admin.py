"""The Django admin cannot bypass the audited services: past draft a question is read-only there."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from forecasting.models import Prediction, Question, QuestionEvent, Resolution
from tests.factories import ArticleFactory, PredictionFactory, QuestionFactory, editor_user


@pytest.fixture
def staff_editor(db):
    return editor_user(username="stan", is_staff=True)


@pytest.fixture
def staff(staff_editor) -> Client:
    client = Client()
    client.force_login(staff_editor)
    return client


def _change_url(question: Question) -> str:
    return reverse("admin:forecasting_question_change", args=[question.pk])


def _form_data(question: Question, **changes) -> dict:
    data = {
        "article": question.article_id,
        "title": question.title,
        "resolution_criteria": question.resolution_criteria,
        "question_type": question.question_type,
        "opens_at_0": question.opens_at.strftime("%Y-%m-%d"),
        "opens_at_1": question.opens_at.strftime("%H:%M:%S"),
        "closes_at_0": question.closes_at.strftime("%Y-%m-%d"),
        "closes_at_1": question.closes_at.strftime("%H:%M:%S"),
        "external_id": "",
        "options-TOTAL_FORMS": "0",
        "options-INITIAL_FORMS": "0",
        "options-MIN_NUM_FORMS": "0",
        "options-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("status", [Question.Status.OPEN, Question.Status.CLOSED, Question.Status.RESOLVED])
def test_a_question_past_draft_cannot_be_changed_in_the_admin(staff, status):
    question = QuestionFactory(status=status)
    other_article = ArticleFactory()
    before = Question.objects.values().get(pk=question.pk)

    page = staff.get(_change_url(question))
    assert page.status_code == 200
    assert 'name="closes_at_0"' not in page.content.decode()  # shown, not editable

    later = question.closes_at + dt.timedelta(days=365)
    response = staff.post(
        _change_url(question),
        _form_data(
            question,
            article=other_article.pk,
            question_type=Question.Type.MULTIPLE_CHOICE,
            closes_at_0=later.strftime("%Y-%m-%d"),
        ),
    )
    assert response.status_code == 403
    assert Question.objects.values().get(pk=question.pk) == before
    assert staff.get(question.get_absolute_url()).status_code == 200


def test_a_question_past_draft_cannot_be_deleted(staff, staff_editor):
    staff_editor.is_superuser = True  # who may delete anything else
    staff_editor.save()
    question = QuestionFactory(status=Question.Status.OPEN)
    delete_url = reverse("admin:forecasting_question_delete", args=[question.pk])
    assert staff.post(delete_url, {"post": "yes"}).status_code == 403
    changelist = staff.post(
        reverse("admin:forecasting_question_changelist"),
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [question.pk], "post": "yes"},
    )
    assert changelist.status_code in (200, 302)
    assert Question.objects.filter(pk=question.pk).exists()


def test_a_draft_may_still_be_edited_but_not_its_status(staff):
    question = QuestionFactory(status=Question.Status.DRAFT)
    response = staff.post(_change_url(question), _form_data(question, title="Reworded?", status=Question.Status.OPEN))
    assert response.status_code == 302, response.content[:2000]
    question.refresh_from_db()
    assert (question.title, question.status, question.published_at) == ("Reworded?", Question.Status.DRAFT, None)


def test_admin_action_opens_through_the_audited_service(staff, staff_editor):
    question = QuestionFactory(status=Question.Status.DRAFT)
    response = staff.post(
        reverse("admin:forecasting_question_changelist"),
        {"action": "opened_selected", ACTION_CHECKBOX_NAME: [question.pk]},
    )
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.status == Question.Status.OPEN
    assert question.published_at is not None
    event = QuestionEvent.objects.get(question=question, action=QuestionEvent.Action.OPENED)
    assert event.actor == staff_editor


def test_audit_resolutions_and_forecasts_are_read_only(staff, staff_editor):
    question = QuestionFactory(status=Question.Status.RESOLVED)
    prediction = PredictionFactory(question=question)
    resolution = Resolution.objects.create(question=question, outcome="yes", note="n", resolved_by=staff_editor)
    event = QuestionEvent.objects.create(question=question, actor=staff_editor, action="resolved", to_status="resolved")
    staff_editor.is_superuser = True  # even a superuser: these rows are the services' alone
    staff_editor.save()
    for model, obj in ((QuestionEvent, event), (Resolution, resolution), (Prediction, prediction)):
        name = model._meta.model_name
        change = reverse(f"admin:forecasting_{name}_change", args=[obj.pk])
        assert staff.get(change).status_code == 200, name
        assert staff.post(change, {"note": "rewritten"}).status_code == 403, name
        delete = reverse(f"admin:forecasting_{name}_delete", args=[obj.pk])
        assert staff.post(delete, {"post": "yes"}).status_code == 403, name
        assert staff.get(reverse(f"admin:forecasting_{name}_add")).status_code == 403, name
        assert model.objects.filter(pk=obj.pk).exists()
    event.refresh_from_db()
    resolution.refresh_from_db()
    assert (event.note, resolution.note) == ("", "n")
