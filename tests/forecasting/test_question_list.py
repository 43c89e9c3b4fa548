"""/questions/: search, filters, sorts, pages of 20 in a constant number of queries, only the
questions the reader may see, and an empty state that says what to do."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import Question
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db

URL = "/questions/"


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client


def _titles(client, **params) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return [row["question"].title for row in response.context["rows"]]


def _forecast(question, probability: str, *, user=None, at=None):
    return services.prediction_create(
        question=question, forecaster=user or UserFactory(), probability=Decimal(probability), now=at
    )


def test_the_route_and_the_header_link(client):
    assert reverse("question_list") == URL
    html = client.get(reverse("home")).content.decode()
    assert f'<a href="{URL}">Questions</a>' in html


def test_search_matches_title_and_criteria_word_by_word(client):
    QuestionFactory(title="Will the bridge open in May?")
    QuestionFactory(title="Rates?", resolution_criteria="Resolves YES if the central bank cuts rates.")
    QuestionFactory(title="Unrelated?")
    assert _titles(client, q="bridge") == ["Will the bridge open in May?"]
    assert _titles(client, q="CENTRAL bank") == ["Rates?"]
    assert _titles(client, q="bridge bank") == []


def test_only_visible_questions_are_listed(client, editor):
    QuestionFactory(title="Published?")
    QuestionFactory(title="Draft?", status=Question.Status.DRAFT)
    assert _titles(client) == ["Published?"]
    editor_client = Client()
    editor_client.force_login(editor)
    assert sorted(_titles(editor_client)) == ["Draft?", "Published?"]


def test_filters_status_article_closing_soon_and_resolved(client):
    now = timezone.now()
    article = ArticleFactory(slug="budget")
    QuestionFactory(title="Soon?", article=article, closes_at=now + dt.timedelta(days=3))
    QuestionFactory(title="Later?", closes_at=now + dt.timedelta(days=30))
    QuestionFactory(title="Closed?", status=Question.Status.CLOSED, closes_at=now + dt.timedelta(days=2))
    QuestionFactory(title="Resolved?", status=Question.Status.RESOLVED)
    assert sorted(_titles(client, status="closed")) == ["Closed?"]
    assert _titles(client, article="budget") == ["Soon?"]
    assert _titles(client, closing_soon="on") == ["Soon?"]
    assert _titles(client, resolved="on") == ["Resolved?"]


def test_i_forecast_and_i_have_not(reader, reader_client, client):
    mine = QuestionFactory(title="Mine?")
    QuestionFactory(title="Not mine?")
    _forecast(mine, "0.4", user=reader)
    assert _titles(reader_client, mine="forecast") == ["Mine?"]
    assert _titles(reader_client, mine="not_forecast") == ["Not mine?"]
    assert "you forecast" in reader_client.get(URL).content.decode()
    # anonymous readers have no such filter: the parameter is ignored, not an error
    assert 'name="mine"' not in client.get(URL).content.decode()
    assert sorted(_titles(client, mine="forecast")) == ["Mine?", "Not mine?"]


def test_sorts_closing_soon_most_forecasters_and_newest(client):
    now = timezone.now()
    a = QuestionFactory(title="A?", closes_at=now + dt.timedelta(days=20))
    b = QuestionFactory(title="B?", closes_at=now + dt.timedelta(days=5))
    QuestionFactory(title="C?", closes_at=now + dt.timedelta(days=1), status=Question.Status.CLOSED)
    Question.objects.filter(pk=a.pk).update(published_at=now - dt.timedelta(hours=1))
    Question.objects.filter(pk=b.pk).update(published_at=now - dt.timedelta(days=3))
    for p in ("0.2", "0.3"):
        _forecast(a, p)
    _forecast(b, "0.5")
    assert _titles(client) == ["B?", "A?", "C?"]  # open ones first, soonest first
    assert _titles(client, sort="forecasters")[:2] == ["A?", "B?"]
    assert _titles(client, sort="newest") == ["A?", "C?", "B?"]  # published 1 hour, 1 day, 3 days ago


def test_sort_by_biggest_move_in_24_hours(client):
    now = timezone.now()
    start = now - dt.timedelta(days=3)
    steady, jumpy, fresh = (QuestionFactory(title=t, opens_at=start) for t in ("Steady?", "Jumpy?", "Fresh?"))
    old, new = UserFactory(), UserFactory()
    _forecast(steady, "0.50", user=old, at=now - dt.timedelta(days=2))
    _forecast(steady, "0.55", user=old, at=now - dt.timedelta(hours=1))
    _forecast(jumpy, "0.20", user=old, at=now - dt.timedelta(days=2))
    _forecast(jumpy, "0.90", user=old, at=now - dt.timedelta(hours=2))
    _forecast(fresh, "0.40", user=new, at=now - dt.timedelta(hours=3))
    response = client.get(URL, {"sort": "move"})
    rows = response.context["rows"]
    assert [r["question"].title for r in rows] == ["Jumpy?", "Steady?", "Fresh?"]
    assert rows[0]["move"]["yes"] == pytest.approx(0.7) and rows[2]["move"]["size"] == 0
    assert "+70 points in 24 h" in response.content.decode()


def test_pages_of_20_in_a_constant_number_of_queries(reader, reader_client):
    def page_queries(params) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert reader_client.get(URL, params).status_code == 200
        return len(queries)

    for question in QuestionFactory.create_batch(3):
        _forecast(question, "0.6")
    reader_client.get(URL)  # warm the session
    few = {sort: page_queries({"sort": sort}) for sort in ("closing", "move")}
    for i in range(22):
        question = multiple_choice_question(title=f"Many {i}?") if i % 4 == 0 else QuestionFactory()
        if not question.is_binary:
            services.prediction_create(question=question, forecaster=reader, option_probabilities=["0.2", "0.3", "0.5"])
        else:
            _forecast(question, "0.3", user=reader)
    for sort, count in few.items():
        assert page_queries({"sort": sort}) <= count
    response = reader_client.get(URL, {"page": 2})
    assert len(response.context["rows"]) == 25 - 20
    assert response.context["page"].paginator.num_pages == 2
    first = reader_client.get(URL).content.decode()
    assert 'rel="next"' in first and "page=2" in first


def test_the_empty_state_says_what_to_do(client):
    html = client.get(URL).content.decode()
    assert "data-empty-state" in html and "No questions are open yet" in html
    QuestionFactory(title="Something?")
    html = client.get(URL, {"q": "nothing-matches"}).content.decode()
    assert "No question matches these filters" in html and "clear the filters" in html


def test_a_bad_filter_is_refused_with_a_message(client):
    QuestionFactory(title="Any?")
    response = client.get(URL, {"status": "bogus", "sort": "sideways"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html and "correct them above" in html
    assert response.context["rows"] == []
