"""Creating a question: input the database would refuse is a clear validation error (form or API 400), not a 500."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from forecasting import services
from forecasting.models import Question, QuestionOption
from tests.api_helpers import assert_error
from tests.factories import ArticleFactory, QuestionFactory

pytestmark = pytest.mark.django_db

TAKEN = "Will the talks resume?"
LABEL_MAX = QuestionOption._meta.get_field("label").max_length
TITLE_MAX = Question._meta.get_field("title").max_length


@pytest.fixture
def article():
    article = ArticleFactory(slug="talks")
    QuestionFactory(article=article, title=TAKEN)
    return article


@pytest.fixture
def editor_client(editor) -> Client:
    client = Client()
    client.force_login(editor)
    return client


def _web_data(article, **changes) -> dict:
    data = {
        "article": article.pk,
        "title": "A new question?",
        "resolution_criteria": "Per Reuters.",
        "question_type": "binary",
        "options": "",
        "opens_at": "2026-01-01T00:00",
        "closes_at": "2099-01-01T00:00",
    }
    data.update(changes)
    return data


def _api_data(article, **changes) -> dict:
    data = {
        "article": article.slug,
        "title": "A new question?",
        "resolution_criteria": "Per Reuters.",
        "question_type": "binary",
        "opens_at": "2026-01-01T00:00:00Z",
        "closes_at": "2099-01-01T00:00:00Z",
    }
    data.update(changes)
    return data


# --- a duplicate title in one article -----------------------------------------------------------------


def test_service_refuses_a_duplicate_title_on_the_title_field(editor, article):
    with pytest.raises(ValidationError) as caught:
        services.question_create(
            actor=editor,
            article=article,
            title=f"  {TAKEN} ",
            resolution_criteria="x",
            opens_at=article.published_at,
            closes_at=article.published_at.replace(year=2099),
        )
    assert "title" in caught.value.message_dict
    assert Question.objects.filter(article=article).count() == 1


def test_web_duplicate_title_is_a_form_error(editor_client, article):
    response = editor_client.post(reverse("editor_question_create"), _web_data(article, title=TAKEN))
    assert response.status_code == 400
    assert response.context["form"].errors["title"]
    assert Question.objects.filter(article=article).count() == 1


def test_api_duplicate_title_is_a_400_on_title(editor_api, article):
    response = editor_api.post("/api/v1/questions/", _api_data(article, title=TAKEN), format="json")
    assert_error(response, 400, "invalid", fields=("title",))
    assert Question.objects.filter(article=article).count() == 1


def test_the_same_title_in_another_article_is_fine(editor_api, article):
    other = ArticleFactory()
    response = editor_api.post("/api/v1/questions/", _api_data(other, title=TAKEN), format="json")
    assert response.status_code == 201


# --- option labels and titles longer than their columns (PostgreSQL refuses them: DataError) ----------


def test_web_option_label_too_long_is_a_form_error(editor_client, article):
    data = _web_data(article, question_type="multiple_choice", options=f"Short\n{'x' * (LABEL_MAX + 1)}")
    response = editor_client.post(reverse("editor_question_create"), data)
    assert response.status_code == 400
    assert response.context["form"].errors["options"]
    assert Question.objects.filter(article=article).count() == 1


def test_api_option_label_too_long_is_a_400(editor_api, article):
    data = _api_data(article, question_type="multiple_choice", options=["Short", "x" * (LABEL_MAX + 1)])
    error = assert_error(editor_api.post("/api/v1/questions/", data, format="json"), 400, "invalid")
    assert any(field.startswith("options") for field in error["fields"]), error  # "options" or "options.1"
    assert Question.objects.filter(article=article).count() == 1


def test_service_refuses_labels_and_titles_longer_than_their_columns(editor, article):
    with pytest.raises(ValidationError) as caught:
        services.question_create(
            actor=editor,
            article=article,
            title="t" * (TITLE_MAX + 1),
            resolution_criteria="x",
            question_type=Question.Type.MULTIPLE_CHOICE,
            options=["Short", "x" * (LABEL_MAX + 1)],
            opens_at=article.published_at,
            closes_at=article.published_at.replace(year=2099),
        )
    assert {"title", "options"} <= set(caught.value.message_dict)
    assert Question.objects.filter(article=article).count() == 1


def test_a_label_exactly_at_the_limit_is_accepted(editor, article):
    question = services.question_create(
        actor=editor,
        article=article,
        title="Longest label?",
        resolution_criteria="x",
        question_type=Question.Type.MULTIPLE_CHOICE,
        options=["Short", "x" * LABEL_MAX],
        opens_at=article.published_at,
        closes_at=article.published_at.replace(year=2099),
    )
    assert [len(o.label) for o in question.options.all()] == [5, LABEL_MAX]
