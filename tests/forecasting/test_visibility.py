"""An embargoed question (a draft) stays hidden from readers in every path, whatever happens to it next:
annulling a draft, or annulling then un-resolving it, must not publish it (``Question.published_at``)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from forecasting import services
from forecasting.models import Question
from tests.factories import ArticleFactory, QuestionFactory
from tests.forecasting.io.export_helpers import client_for, fetch, unzip

SECRET_TITLE = "Will the minister resign before Friday?"
SECRET_NOTE = "EMBARGOED-NOTE: source says resignation letter drafted"


@pytest.fixture(params=["annulled", "annulled then un-resolved"])
def world(request, editor):
    """An article with one public (open) question and one draft that an editor annulled (and maybe un-resolved)."""
    article = ArticleFactory(slug="cabinet", title="Cabinet crisis")
    public = QuestionFactory(article=article, title="Will the budget pass?")
    draft = QuestionFactory(article=article, title=SECRET_TITLE, status=Question.Status.DRAFT)
    services.question_annul(question=draft, actor=editor, note=SECRET_NOTE)
    if request.param == "annulled then un-resolved":
        services.question_unresolve(question=draft, actor=editor, note=SECRET_NOTE)
    draft.refresh_from_db()
    assert draft.status != Question.Status.DRAFT  # what used to make it public
    return {"article": article, "public": public, "draft": draft}


def _hidden(content: bytes) -> bool:
    text = content.decode("utf-8", errors="replace")
    return SECRET_TITLE not in text and "EMBARGOED-NOTE" not in text


# --- the web ----------------------------------------------------------------------------------------


def test_question_page_is_not_found_for_a_reader(world, reader):
    assert Client().get(world["draft"].get_absolute_url()).status_code == 404
    assert client_for(reader).get(world["draft"].get_absolute_url()).status_code == 404
    assert Client().get(world["public"].get_absolute_url()).status_code == 200


def test_editor_still_sees_it(world, editor):
    response = client_for(editor).get(world["draft"].get_absolute_url())
    assert response.status_code == 200
    assert SECRET_TITLE in response.content.decode()


def test_article_page_lists_only_the_public_question(world):
    response = Client().get(world["article"].get_absolute_url())
    assert response.status_code == 200
    assert world["public"].title in response.content.decode()
    assert _hidden(response.content)


def test_home_page_counts_only_the_public_question(world):
    response = Client().get(reverse("home"))
    article = next(a for a in response.context["articles"] if a.pk == world["article"].pk)
    assert (article.open_questions, article.all_questions) == (1, 1)


# --- the API ----------------------------------------------------------------------------------------


def test_api_question_list_and_detail_hide_it(world):
    api = APIClient()
    listed = api.get(reverse("api:question-list")).json()["results"]
    assert [q["id"] for q in listed] == [world["public"].pk]
    pk = world["draft"].pk
    for name in ("api:question-detail", "api:question-aggregates"):
        assert api.get(reverse(name, kwargs={"pk": pk})).status_code == 404, name


def test_api_question_scores_hide_it_from_an_analyst(world, analyst_api):
    # Analysts read scores but may not see embargoed questions.
    response = analyst_api.get(reverse("api:question-scores", kwargs={"pk": world["draft"].pk}))
    assert response.status_code == 404


def test_api_articles_hide_it(world):
    api = APIClient()
    detail = api.get(reverse("api:article-detail", kwargs={"slug": "cabinet"}))
    assert [q["id"] for q in detail.json()["questions"]] == [world["public"].pk]
    assert _hidden(detail.content)
    row = next(a for a in api.get(reverse("api:article-list")).json()["results"] if a["slug"] == "cabinet")
    assert (row["questions_open"], row["questions_published"]) == (1, 1)


# --- exports ----------------------------------------------------------------------------------------


def test_analyst_downloads_leave_it_out(world, analyst):
    client = client_for(analyst)
    for url in (reverse("download_all"), reverse("download_article", args=["cabinet"])):
        files = unzip(fetch(client, url))
        assert any(world["public"].title.encode() in data for data in files.values()), url
        assert all(_hidden(data) for data in files.values()), url
    fetch(client, reverse("download_question", args=[world["draft"].pk]), expect=404)
    page = fetch(client, reverse("analyst_downloads"))
    assert world["public"].title in page.content.decode()
    assert _hidden(page.content)


def test_api_downloads_leave_it_out(world, analyst_api):
    response = analyst_api.get(reverse("api:download-question", kwargs={"pk": world["draft"].pk}))
    assert response.status_code == 404


# --- publication itself ------------------------------------------------------------------------------


def test_opening_publishes_once_and_later_changes_keep_it(editor):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    assert not Question.objects.visible_to(None).filter(pk=draft.pk).exists()
    services.question_open(question=draft, actor=editor)
    draft.refresh_from_db()
    first = draft.published_at
    assert first is not None
    services.question_close(question=draft, actor=editor)
    services.question_open(question=draft, actor=editor)
    draft.refresh_from_db()
    assert draft.published_at == first
    assert Client().get(draft.get_absolute_url()).status_code == 200


def test_data_migration_publishes_what_was_opened_and_not_an_annulled_draft(editor):
    """The 0004 data migration, run on rows as they were before it (no ``published_at``)."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("forecasting.migrations.0004_question_published_at")
    opened = QuestionFactory(status=Question.Status.DRAFT)
    services.question_open(question=opened, actor=editor)
    opened_at = opened.events.get(action="opened").created_at
    annulled_draft = QuestionFactory(status=Question.Status.DRAFT)
    services.question_annul(question=annulled_draft, actor=editor)
    unresolved_draft = QuestionFactory(status=Question.Status.DRAFT)
    services.question_annul(question=unresolved_draft, actor=editor)
    services.question_unresolve(question=unresolved_draft, actor=editor)
    from_fixture = QuestionFactory(status=Question.Status.RESOLVED)  # no audit trail: public history
    draft = QuestionFactory(status=Question.Status.DRAFT)
    Question.objects.update(published_at=None)

    migration.set_published_at(apps, None)

    published = dict(Question.objects.values_list("pk", "published_at"))
    assert published[opened.pk] == opened_at
    assert published[from_fixture.pk] == from_fixture.opens_at
    assert published[annulled_draft.pk] is None
    assert published[unresolved_draft.pk] is None
    assert published[draft.pk] is None
