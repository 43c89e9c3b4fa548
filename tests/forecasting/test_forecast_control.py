"""The forecast control on the question page: what the form offers (labels, slider text, the last
forecast, the multiple-choice total, the rationale), the htmx answer (the "Your forecast" panel and
the community number out of band), errors next to their field with nothing saved, the rationale in
the API, and the paragraph an editor places a question at."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from forecasting import services
from forecasting.models import RATIONALE_MAX_LENGTH, Prediction, Question
from tests.factories import ArticleFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db

PANEL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "your-forecast"}


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client


def _submit(client, question, data, **headers):
    return client.post(reverse("forecast_submit", args=[question.pk]), data, **headers)


# --- the form ------------------------------------------------------------------------------------


def test_the_slider_and_number_are_labelled_and_start_at_my_last_forecast(reader, reader_client, question):
    services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.4"))
    html = reader_client.get(question.get_absolute_url()).content.decode()
    assert f'<label for="p-{question.pk}">' in html
    assert re.search(rf'type="range"[^>]*id="p-{question.pk}-slider"[^>]*aria-valuetext="40%"', html)
    assert re.search(rf'type="number" id="p-{question.pk}"[^>]*value="40"', html)
    assert 'data-last="40"' in html  # forecast.js says "+7 points from your 40%" from it
    assert "Your last forecast: 40%." in html
    assert 'hx-target="#your-forecast"' in html


def test_forecast_pages_have_no_inline_scripts_handlers_or_styles(reader, reader_client, question):
    services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.4"), rationale="x")
    for url in (question.get_absolute_url(), question.article.get_absolute_url(), reverse("question_list")):
        html = reader_client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=", html), url
        assert 'style="' not in html, url


def test_the_multiple_choice_form_has_one_number_per_option_and_a_total(reader_client):
    question = multiple_choice_question(labels=("Red", "Green"))
    html = reader_client.get(question.get_absolute_url()).content.decode()
    for option in question.options.all():
        assert re.search(rf'<label for="id_option_{option.pk}-{question.pk}">{option.label}</label>', html)
    assert "<output data-sum" in html


# --- saving, with and without htmx ---------------------------------------------------------------


def test_without_javascript_the_forecast_and_rationale_are_saved_and_the_page_redirects(
    reader, reader_client, question
):
    response = _submit(reader_client, question, {"probability": "47", "rationale": "Base rate <b>plus</b> news."})
    assert response.status_code == 302 and response["Location"] == question.get_absolute_url()
    prediction = Prediction.objects.get(forecaster=reader)
    assert (prediction.probability, prediction.rationale) == (Decimal("0.47"), "Base rate <b>plus</b> news.")
    html = reader_client.get(question.get_absolute_url()).content.decode()
    assert "Base rate &lt;b&gt;plus&lt;/b&gt; news." in html  # the reader's own history, escaped


def test_with_htmx_the_panel_and_the_community_number_are_swapped(reader, reader_client, question):
    services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal("0.2"))
    response = _submit(reader_client, question, {"probability": "80", "rationale": "Momentum."}, **PANEL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert body.strip().startswith('<section class="panel" id="your-forecast"')
    assert "data-forecast-saved" in body and "is saved" in body
    assert "Momentum." in body  # the history in the panel has the new forecast
    community = services.community_forecast(question=question).probability_yes
    oob = re.search(r'<p hx-swap-oob="innerHTML:\[data-community\]"><span data-community-value>([\d.]+)%</span>', body)
    assert oob and Decimal(oob.group(1)) == round(Decimal(str(community)) * 100, 1)
    assert 'data-last="80"' in body  # the fresh form starts from the new forecast
    assert Prediction.objects.filter(forecaster=reader).count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"probability": "abc"}, "probability", "must be a number"),
        ({"probability": "0.5"}, "probability", "between 1% and 99%"),
        ({"probability": "50", "rationale": "x" * (RATIONALE_MAX_LENGTH + 1)}, "rationale", "at most 2000 characters"),
    ],
)
def test_a_bad_forecast_answers_400_next_to_the_field_and_saves_nothing(reader_client, question, data, field, message):
    response = _submit(reader_client, question, data, **PANEL)
    assert response.status_code == 400
    body = response.content.decode()
    errors_id = f"p-{question.pk}-errors" if field == "probability" else f"rationale-{question.pk}-errors"
    assert re.search(rf'<ul class="errorlist" id="{errors_id}"><li>[^<]*{re.escape(message)}', body)
    assert "data-forecast-saved" not in body and "hx-swap-oob" not in body
    assert not Prediction.objects.exists()
    # without JavaScript: the question page again, with the same message
    page = _submit(reader_client, question, data)
    assert page.status_code == 400 and message in page.content.decode()
    assert not Prediction.objects.exists()


def test_multiple_choice_must_add_up_to_100(reader, reader_client):
    question = multiple_choice_question(labels=("Red", "Green", "Blue"))
    red, green, blue = question.options.all()
    bad = {f"option_{red.pk}": "50", f"option_{green.pk}": "30", f"option_{blue.pk}": "10"}
    response = _submit(reader_client, question, bad, **PANEL)
    assert response.status_code == 400
    assert "must add up to 100%; they add up to 90%" in response.content.decode()
    assert not Prediction.objects.exists()
    good = {**bad, f"option_{blue.pk}": "20", "rationale": "Even-ish."}
    assert _submit(reader_client, question, good, **PANEL).status_code == 200
    prediction = Prediction.objects.get(forecaster=reader)
    assert prediction.probability_vector() == [0.5, 0.3, 0.2] and prediction.rationale == "Even-ish."


def test_a_closed_question_refuses_in_place_with_the_reason(reader_client, question):
    Question.objects.filter(pk=question.pk).update(status=Question.Status.CLOSED)
    response = _submit(reader_client, question, {"probability": "50"}, **PANEL)
    assert response.status_code == 400
    assert "no longer takes forecasts" in response.content.decode()
    assert not Prediction.objects.exists()


def test_an_unknown_htmx_target_gets_the_ordinary_redirect(reader_client, question):
    response = _submit(
        reader_client, question, {"probability": "50"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="elsewhere"
    )
    assert response.status_code == 302


# --- the API -------------------------------------------------------------------------------------


def test_the_api_stores_the_rationale_and_refuses_a_long_one(reader, reader_api, question):
    url = reverse("api:prediction-list")
    too_long = {"question": question.pk, "probability": "0.3", "rationale": "y" * (RATIONALE_MAX_LENGTH + 1)}
    assert reader_api.post(url, too_long, format="json").status_code == 400
    assert not Prediction.objects.exists()
    response = reader_api.post(url, {"question": question.pk, "probability": "0.3", "rationale": "Why"}, format="json")
    assert response.status_code == 201 and response.json()["rationale"] == "Why"
    assert Prediction.objects.get(forecaster=reader).rationale == "Why"


# --- where an editor places a question -----------------------------------------------------------


def _create_data(article, **extra) -> dict:
    return {
        "article": article.pk,
        "title": "Placed question?",
        "resolution_criteria": "Resolves YES if so.",
        "question_type": "binary",
        "options": "",
        "opens_at": "2030-01-01T00:00",
        "closes_at": "2030-02-01T00:00",
        **extra,
    }


def test_the_editor_places_a_question_after_a_paragraph(editor):
    client = Client()
    client.force_login(editor)
    article = ArticleFactory()
    response = client.get(reverse("editor_question_create"))
    assert 'name="paragraph"' in response.content.decode()
    response = client.post(reverse("editor_question_create"), _create_data(article, paragraph="2"))
    assert response.status_code == 302
    assert Question.objects.get(title="Placed question?").paragraph == 2
    response = client.post(reverse("editor_question_create"), _create_data(article, title="Other?", paragraph="0"))
    assert response.status_code == 400 and not Question.objects.filter(title="Other?").exists()


def test_the_api_creates_a_question_at_a_paragraph(editor_api):
    article = ArticleFactory()
    data = {
        "article": article.slug,
        "title": "Via the API?",
        "resolution_criteria": "Resolves YES if so.",
        "opens_at": "2030-01-01T00:00:00Z",
        "closes_at": "2030-02-01T00:00:00Z",
        "paragraph": 3,
    }
    response = editor_api.post(reverse("api:question-list"), data, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["paragraph"] == 3
    assert editor_api.post(reverse("api:question-list"), {**data, "title": "Bad?", "paragraph": 0}).status_code == 400
    assert not Question.objects.filter(title="Bad?").exists()
