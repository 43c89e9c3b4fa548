"""The reader's pages cost as many queries with many forecasters, forecasts and comments as with few
(issue 23): the question page, the article page, the embed and the chart's data, anonymous and signed in.

Counts are compared between a sparse and a crowded question built the same way, never against a
hard-coded number, so that adding a panel to every page does not break these tests.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from tests.factories import (
    ArticleFactory,
    CommentFactory,
    QuestionFactory,
    UserFactory,
    multiple_choice_question,
)

pytestmark = pytest.mark.django_db

PAGES = ("question_detail", "article_detail", "question_embed", "question_history")


def _world(*, forecasters: int, updates: int, comments: int, multiple_choice: bool = False):
    """An article with a question: ``forecasters`` readers who forecast (``updates`` of them twice), and
    ``comments`` comments; returns the article, the question and a reader who forecast."""
    article = ArticleFactory(body="One.\n\nTwo.")
    opens = timezone.now() - dt.timedelta(days=5)
    if multiple_choice:
        question = multiple_choice_question(article=article, opens_at=opens)
    else:
        question = QuestionFactory(article=article, opens_at=opens)
    readers = [UserFactory() for _ in range(forecasters)]
    for i, reader in enumerate([*readers, *readers[:updates]]):
        if multiple_choice:
            values = {"option_probabilities": [Decimal("0.2"), Decimal("0.3"), Decimal("0.5")]}
        else:
            values = {"probability": Decimal(10 + (i * 7) % 80) / 100}
        services.prediction_create(question=question, forecaster=reader, **values)
    for i in range(comments):
        CommentFactory(question=question, author=readers[i % len(readers)])
    return article, question, readers[0]


def _url(name: str, article, question) -> str:
    if name == "article_detail":
        return reverse(name, kwargs={"slug": article.slug})
    return reverse(name, kwargs={"pk": question.pk})


def _queries(client: Client, url: str) -> int:
    client.get(url)  # the first request may fill per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


@pytest.mark.parametrize("multiple_choice", [False, True], ids=["yes-no", "multiple-choice"])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("page", PAGES)
def test_query_count_does_not_grow_with_the_data(page, signed_in, multiple_choice):
    few = _world(forecasters=2, updates=0, comments=1, multiple_choice=multiple_choice)
    many = _world(forecasters=25, updates=10, comments=12, multiple_choice=multiple_choice)
    counts = []
    for article, question, reader in (few, many):
        client = Client()
        if signed_in:
            client.force_login(reader)
        counts.append(_queries(client, _url(page, article, question)))
    assert counts[0] == counts[1], f"{page}: {counts[0]} queries with few forecasts, {counts[1]} with many"


def test_the_pages_show_the_crowd_they_count():
    """The crowded question's pages do show its forecasters (the counts above are of real pages)."""
    article, question, reader = _world(forecasters=25, updates=10, comments=12)
    client = Client()
    client.force_login(reader)
    page = client.get(_url("question_detail", article, question)).content.decode()
    assert "25" in page
    data = client.get(_url("question_history", article, question)).json()
    community = next(s for s in data["series"] if s["key"] == "community")
    assert len(community["t"]) == 35  # one point per forecast
    assert len(data["mine"]["t"]) == 2  # the reader forecast twice
