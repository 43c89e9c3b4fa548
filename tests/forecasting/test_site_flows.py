"""Flows that had no test of their own: the front page as a reader sees it, logging out, an editor's actions
from the question page's editor panel (close, reopen, annul, un-resolve), and asking the Bayesian model for a
refit from its page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forecasting.models import ModelSchedule, OutboxTask, Question, QuestionEvent, Resolution, Score
from tests.factories import ArticleFactory, QuestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(editor) -> Client:
    client = Client()
    client.force_login(editor)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- the front page -----------------------------------------------------------------------------------


def test_the_front_page_links_each_article_with_its_open_and_published_questions(client):
    now = timezone.now()
    busy = ArticleFactory(title="Talks resume in Muscat", published_at=now - dt.timedelta(hours=2))
    quiet = ArticleFactory(title="A quiet week", published_at=now - dt.timedelta(days=2))
    QuestionFactory.create_batch(2, article=busy)  # open
    QuestionFactory(article=busy, status=Question.Status.CLOSED)
    QuestionFactory(article=busy, status=Question.Status.DRAFT)  # not published: not counted
    QuestionFactory(article=quiet, status=Question.Status.RESOLVED)
    page = client.get(reverse("home")).content.decode()
    items = re.findall(r'<a class="article-title" href="([^"]+)">([^<]+)</a>\s*<div class="meta">([^<]*)</div>', page)
    assert [(href, title) for href, title, _ in items] == [
        (busy.get_absolute_url(), "Talks resume in Muscat"),
        (quiet.get_absolute_url(), "A quiet week"),
    ]
    assert items[0][2].endswith("2 open questions of 3")
    assert items[1][2].endswith("0 open questions of 1")


def test_the_front_page_without_articles_says_where_they_come_from(client):
    page = client.get(reverse("home")).content.decode()
    assert "No articles yet." in page and 'class="article-title"' not in page


# --- logging out ----------------------------------------------------------------------------------------


def test_logging_out_ends_the_session_and_only_by_post(reader):
    client = Client()
    client.force_login(reader)
    assert client.get(reverse("my_forecasts")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # a link or an image cannot log a reader out
    assert client.get(reverse("my_forecasts")).status_code == 200  # still logged in
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("home")
    after = client.get(reverse("my_forecasts"))
    assert after.status_code == 302 and after["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in client.session


# --- the editor panel on the question page ------------------------------------------------------------------


def panel_forms(page: str) -> list[str]:
    """The actions of the editor panel's forms and links, in page order."""
    panel = page[page.index('<section class="panel editor"') :]
    panel = panel[: panel.index("</section>")]
    return re.findall(r'(?:action|href)="(/(?:questions|editor/questions)/\d+/[a-z]+/)"', panel)


def test_an_editor_closes_and_reopens_a_question_from_its_page(editor_client, editor, opened_question):
    url = opened_question.get_absolute_url()
    close = reverse("question_action", args=[opened_question.pk, "close"])
    assert close in panel_forms(editor_client.get(url).content.decode())
    response = editor_client.post(close, {"note": "The vote was held."})
    assert response.status_code == 302 and response["Location"] == url
    assert messages_of(response) == ["The question is closed."]
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.CLOSED
    event = opened_question.events.get(action=QuestionEvent.Action.CLOSED)
    assert (event.actor, event.note, event.from_status, event.to_status) == (
        editor,
        "The vote was held.",
        "open",
        "closed",
    )
    page = editor_client.get(url).content.decode()
    reopen = reverse("question_action", args=[opened_question.pk, "open"])
    assert reopen in panel_forms(page) and close not in panel_forms(page)
    assert "(open → closed): The vote was held." in page  # the history shows it
    response = editor_client.post(reopen)
    assert messages_of(response) == ["The question is open for forecasts."]
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.OPEN


def test_an_editor_annuls_from_the_question_page_through_the_confirmation(editor_client, opened_question):
    annul = reverse("editor_question_annul", args=[opened_question.pk])
    assert annul in panel_forms(editor_client.get(opened_question.get_absolute_url()).content.decode())
    response = editor_client.post(annul, {"reason": "The referendum was cancelled.", "confirm": "on"})
    assert response.status_code == 302 and response["Location"] == opened_question.get_absolute_url()
    assert messages_of(response) == ["The question is annulled; nobody is scored on it."]
    question = Question.objects.get(pk=opened_question.pk)
    assert question.status == Question.Status.ANNULLED
    assert question.events.get(action=QuestionEvent.Action.ANNULLED).note == "The referendum was cancelled."
    # and un-annuls it: back to closed
    unresolve = reverse("editor_question_unresolve", args=[opened_question.pk])
    assert unresolve in panel_forms(editor_client.get(opened_question.get_absolute_url()).content.decode())
    editor_client.post(unresolve, {"reason": "Rescheduled, not cancelled.", "confirm": "on"})
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.CLOSED


def test_un_resolving_from_the_question_page_retracts_the_resolution_and_the_scores(
    editor_client, editor, resolved_question, django_capture_on_commit_callbacks
):
    assert Score.objects.filter(question=resolved_question).exists()
    unresolve = reverse("editor_question_unresolve", args=[resolved_question.pk])
    assert unresolve in panel_forms(editor_client.get(resolved_question.get_absolute_url()).content.decode())
    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(unresolve, {"reason": "The count was corrected.", "confirm": "on"})
    assert messages_of(response) == ["The resolution was retracted; the question is closed again."]
    assert Question.objects.get(pk=resolved_question.pk).status == Question.Status.CLOSED
    resolution = Resolution.objects.get(question=resolved_question)
    assert resolution.retracted_by == editor and resolution.retracted_at is not None
    assert not Score.objects.filter(question=resolved_question).exists()  # the rescoring found nothing to score
    page = editor_client.get(resolved_question.get_absolute_url()).content.decode()
    assert "The count was corrected." in page
    assert reverse("question_resolve", args=[resolved_question.pk]) in panel_forms(page)  # resolvable again


# --- the Bayesian model's page ------------------------------------------------------------------------------


def test_an_editor_asks_for_a_refit_from_the_model_page(editor_client, reader, analyst):
    # Readers may not see the page, analysts may see it but not ask: neither can queue a refit.
    for user in (reader, analyst):
        client = Client()
        client.force_login(user)
        assert client.post(reverse("editor_model_runs")).status_code == 403
    assert not ModelSchedule.objects.exclude(requested_at=None).exists()

    page = editor_client.get(reverse("editor_model_runs")).content.decode()
    assert '<form method="post">' in page and "Refit now" in page  # the page offers the button
    before = timezone.now()
    response = editor_client.post(reverse("editor_model_runs"))
    assert response.status_code == 302 and response["Location"] == reverse("editor_model_runs")
    assert messages_of(response) == ["Refit queued: a worker will pick it up in a few seconds."]
    schedule = ModelSchedule.objects.get()
    assert schedule.requested_at >= before and schedule.requested_reason == "requested by erin"
    assert OutboxTask.objects.filter(task_name="forecasting.tasks.refit_bayes").exists()
