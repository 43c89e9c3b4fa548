"""The article page: the text in paragraphs, each question's card at the paragraph that raises it,
forecasting from the card (htmx in place, or a redirect back to the card without JavaScript), and a
query count that does not grow with the number of questions."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import Prediction, Question
from forecasting.views.articles import place_cards, split_paragraphs
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client


def _forecast(question, probability: str, *, at=None, user=None) -> Prediction:
    return services.prediction_create(
        question=question, forecaster=user or UserFactory(), probability=Decimal(probability), now=at
    )


# --- paragraphs ---------------------------------------------------------------------------------


def test_paragraphs_are_split_on_blank_lines_only():
    body = "First line\nstill the first.\n\n  \nSecond.\r\n\r\nThird.\n"
    assert split_paragraphs(body) == ["First line\nstill the first.", "Second.", "Third."]


def test_cards_go_after_their_paragraph_and_the_rest_after_the_text():
    cards = [{"question": Question(paragraph=p, title=str(p))} for p in (2, None, 9, 1)]
    blocks, after = place_cards(["a", "b", "c"], cards)
    assert [[c["question"].title for c in block["cards"]] for block in blocks] == [["1"], ["2"], []]
    assert [c["question"].title for c in after] == ["None", "9"]


def test_the_card_sits_after_the_chosen_paragraph_and_the_text_is_escaped(client):
    article = ArticleFactory(body="Opening <b>bold</b> claim.\n\nMiddle paragraph.\n\nClosing words.")
    early = QuestionFactory(article=article, paragraph=1, title="Early question?")
    late = QuestionFactory(article=article, paragraph=None, title="Late question?")
    html = client.get(article.get_absolute_url()).content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert html.index("Opening") < html.index(f'id="q{early.pk}"') < html.index("Middle paragraph")
    assert html.index("Closing words") < html.index(f'id="q{late.pk}"')


# --- what a card shows ---------------------------------------------------------------------------


def test_a_card_shows_community_sparkline_forecasters_days_left_and_my_forecast(reader, reader_client):
    now = timezone.now()
    question = QuestionFactory(opens_at=now - dt.timedelta(days=5), closes_at=now + dt.timedelta(days=10, hours=1))
    _forecast(question, "0.2", at=now - dt.timedelta(days=3))
    _forecast(question, "0.6", at=now - dt.timedelta(days=2), user=reader)
    response = reader_client.get(question.article.get_absolute_url())
    (card,) = response.context["cards"]
    assert card["community"].forecasters == 2
    assert card["mine"].probability == Decimal("0.6")
    assert card["days_left"] == 11
    assert len(card["sparklines"]) == 1 and card["sparklines"][0]["points"]
    html = response.content.decode()
    assert "2 forecasters" in html
    assert "closes in 11 days" in html
    assert "data-sparkline" in html
    assert "your forecast <strong>60%</strong>" in html
    community = services.community_forecast(question=question).probability_yes
    assert f"data-community-value>{round(community * 100, 1):g}%" in html


def test_drafts_are_not_shown_to_readers(reader_client):
    article = ArticleFactory()
    draft = QuestionFactory(article=article, status=Question.Status.DRAFT, title="Secret draft?")
    html = reader_client.get(article.get_absolute_url()).content.decode()
    assert "Secret draft?" not in html and f'id="q{draft.pk}"' not in html


def test_anonymous_readers_are_asked_to_log_in(client, question):
    html = client.get(question.article.get_absolute_url()).content.decode()
    assert "to forecast" in html and reverse("login") in html
    assert 'name="probability"' not in html


def test_multiple_choice_questions_are_forecast_on_the_card(reader_client):
    question = multiple_choice_question()
    html = reader_client.get(question.article.get_absolute_url()).content.decode()
    for option in question.options.all():
        assert f'name="option_{option.pk}"' in html
    assert "data-sum" in html


# --- constant queries ----------------------------------------------------------------------------


def _article_with(n: int, reader) -> str:
    article = ArticleFactory(body="One.\n\nTwo.\n\nThree.")
    for i in range(n):
        if i % 2:
            question = multiple_choice_question(article=article, paragraph=i % 3 + 1)
            services.prediction_create(question=question, forecaster=reader, option_probabilities=["0.2", "0.3", "0.5"])
        else:
            question = QuestionFactory(article=article, paragraph=None)
            _forecast(question, "0.3")
            _forecast(question, "0.7", user=reader)
    return article.get_absolute_url()


def test_the_article_page_query_count_does_not_grow_with_its_questions(
    reader, reader_client, django_assert_max_num_queries
):
    one, eight = _article_with(1, reader), _article_with(8, reader)
    reader_client.get(one)  # warm the session and the content types
    with CaptureQueriesContext(connection) as queries:
        assert reader_client.get(one).status_code == 200
    with django_assert_max_num_queries(len(queries)):
        response = reader_client.get(eight)
    assert len(response.context["cards"]) == 8


# --- forecasting from the card -------------------------------------------------------------------


def test_the_card_form_without_javascript_redirects_back_to_the_card(reader, reader_client, question):
    html = reader_client.get(question.article.get_absolute_url()).content.decode()
    next_url = f"{question.article.get_absolute_url()}#q{question.pk}"
    assert f'value="{next_url}"' in html
    response = reader_client.post(
        reverse("forecast_submit", args=[question.pk]), {"probability": "35", "next": next_url}
    )
    assert response.status_code == 302 and response["Location"] == next_url
    assert Prediction.objects.get(question=question, forecaster=reader).probability == Decimal("0.35")


def test_the_card_form_with_htmx_swaps_the_card(reader, reader_client, question):
    html = reader_client.get(question.article.get_absolute_url()).content.decode()
    assert f'hx-target="#q{question.pk}"' in html
    response = reader_client.post(
        reverse("forecast_submit", args=[question.pk]),
        {"probability": "64", "rationale": "Polls <moved>."},
        HTTP_HX_TARGET=f"q{question.pk}",
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and body.strip().startswith('<section class="question-card')
    assert "data-forecast-saved" in body
    assert "data-community-value>64%" in body  # the only forecaster: the community is their forecast
    assert "your forecast <strong>64%</strong>" in body
    prediction = Prediction.objects.get(question=question, forecaster=reader)
    assert (prediction.probability, prediction.rationale) == (Decimal("0.64"), "Polls <moved>.")


def test_a_bad_forecast_from_the_card_answers_400_with_the_message_and_saves_nothing(reader_client, question):
    response = reader_client.post(
        reverse("forecast_submit", args=[question.pk]),
        {"probability": "150"},
        HTTP_HX_TARGET=f"q{question.pk}",
        **HTMX,
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "must be between 1% and 99%" in body
    assert f'id="q{question.pk}"' in body and 'aria-invalid="true"' in body
    assert "data-forecast-saved" not in body
    assert not Prediction.objects.exists()
