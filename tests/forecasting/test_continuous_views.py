"""Numeric and date questions on the web: the reader's form (a median and an 80% interval, more estimates,
the preview that writes nothing), the question page, cards and every page a numeric or date question
appears on, and the editors' authoring and resolving."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from forecasting import services
from forecasting.continuous import summary
from forecasting.forms import date_to_epoch
from forecasting.models import AggregateSnapshot, Prediction, Question, QuestionEvent, Resolution
from tests.factories import (
    ArticleFactory,
    QuestionFactory,
    UserFactory,
    date_question,
    multiple_choice_question,
    numeric_question,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PANEL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "your-forecast"}
DAY = 86400


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reader_client(reader) -> Client:
    return _client(reader)


@pytest.fixture
def editor_client(editor) -> Client:
    return _client(editor)


@pytest.fixture
def violations():
    """How many ceasefire violations? 0 to 500, open above."""
    return numeric_question(0, 500, open_upper=True, unit="violations", title="How many ceasefire violations in March?")


@pytest.fixture
def talks():
    """When will the talks resume? 1 March to 31 December 2026 (noon UTC), open after."""
    first, last = dt.date(2026, 3, 1), dt.date(2026, 12, 31)
    return QuestionFactory(
        question_type=Question.Type.DATE,
        title="When will the talks resume?",
        range_min=date_to_epoch(first),
        range_max=date_to_epoch(last),
        open_upper_bound=True,
    )


def _submit(client, question, data, **headers):
    return client.post(reverse("forecast_submit", args=[question.pk]), data, **headers)


def _preview(client, question, data):
    return client.get(reverse("forecast_preview", args=[question.pk]), data)


def _forecast(question, forecaster=None, median=120.0, low=60.0, high=220.0):
    return services.prediction_create(
        question=question,
        forecaster=forecaster or UserFactory(),
        components=[{"median": median, "low": low, "high": high}],
    )


def _text(html: str) -> str:
    """A page's words, tags dropped and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the reader's form ---------------------------------------------------------------------------------


def test_a_numeric_forecast_is_saved_from_a_median_and_an_interval(reader, reader_client, violations):
    response = _submit(reader_client, violations, {"median": "120", "low": "60", "high": "220"})
    assert response.status_code == 302 and response["Location"] == violations.get_absolute_url()
    prediction = Prediction.objects.get(forecaster=reader, question=violations)
    assert len(prediction.cdf) == 201 and np.all(np.diff(prediction.cdf) >= 0)
    shape = summary(prediction.cdf, violations.scale)
    # the closed low end (0) cuts off the curve's left tail: its percentiles move a little, no more
    assert (shape["low"], shape["median"], shape["high"]) == pytest.approx((60, 120, 220), abs=5)
    page = _text(reader_client.get(violations.get_absolute_url()).content.decode())
    described = violations.format_value(shape["median"])
    assert f"median {described} (80%: " in page  # the community's (one forecaster: the reader's)
    assert re.search(rf"Median {described} \(80%: [\d.]+ – \d+ violations\)", page)  # the reader's history


def test_updating_with_the_pre_filled_values_gives_the_same_forecast(reader, reader_client, violations):
    """The form is pre-filled with the values that rebuild the last forecast, not with its percentiles, which a
    closed end moves: an unchanged update does not drift."""
    _submit(reader_client, violations, {"median": "40", "low": "10", "high": "90"})
    first = Prediction.objects.get(forecaster=reader)
    html = reader_client.get(violations.get_absolute_url()).content.decode()
    values = {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1) for name in ("median", "low", "high")}
    assert values == {"median": "40", "low": "10", "high": "90"}
    _submit(reader_client, violations, values)
    second = Prediction.objects.filter(forecaster=reader).latest("id")
    np.testing.assert_allclose(second.cdf, first.cdf, atol=0.01)


def test_numbers_may_carry_thousands_separators_and_the_unit(reader, reader_client, violations):
    data = {"median": "1,200", "low": "950 violations", "high": "1 500", "rationale": "Spring offensive."}
    question = numeric_question(0, 2000, unit="violations")
    assert _submit(reader_client, question, data).status_code == 302
    prediction = Prediction.objects.get(question=question)
    shape = summary(prediction.cdf, question.scale)
    assert (shape["low"], shape["median"], shape["high"]) == pytest.approx((950, 1200, 1500), abs=5)
    assert prediction.rationale == "Spring offensive."


def test_a_date_forecast_takes_days(reader, reader_client, talks):
    data = {"median": "2026-06-15", "low": "2026-04-01", "high": "2026-09-30"}
    assert _submit(reader_client, talks, data).status_code == 302
    prediction = Prediction.objects.get(forecaster=reader)
    shape = summary(prediction.cdf, talks.scale)
    assert shape["median"] == pytest.approx(date_to_epoch(dt.date(2026, 6, 15)), abs=7 * DAY)
    page = _text(reader_client.get(talks.get_absolute_url()).content.decode())
    # the closed start of the range (1 March) cuts off the curve's left tail: the percentiles move a little
    assert re.search(r"median \d+ Jun 2026 \(80%: \d+ Apr 2026 – \d+ (Sep|Oct) 2026\)", page)
    # the form starts from the last forecast, as days
    html = reader_client.get(talks.get_absolute_url()).content.decode()
    assert re.search(rf'type="date" name="median" value="2026-06-15"[^>]*id="id_median-{talks.pk}"', html)


def test_the_form_starts_from_my_last_forecast(reader, reader_client, violations):
    _forecast(violations, reader, median=150, low=90, high=260)
    html = reader_client.get(violations.get_absolute_url()).content.decode()
    for name, value in (("median", "150"), ("low", "90"), ("high", "260")):
        assert re.search(rf'name="{name}" value="{value}"[^>]*id="id_{name}-{violations.pk}"', html), name
    assert f'<label for="id_median-{violations.pk}">Median</label>' in html
    assert f'hx-get="{reverse("forecast_preview", args=[violations.pk])}"' in html
    assert 'hx-trigger="input changed delay:300ms"' in html


def test_a_second_estimate_makes_a_mixture(reader, reader_client, violations):
    data = {"median": "80", "low": "60", "high": "100", "median_2": "350", "low_2": "320", "high_2": "380"}
    data |= {"weight": "1", "weight_2": "3"}
    assert _submit(reader_client, violations, data).status_code == 302
    cdf = np.asarray(Prediction.objects.get(forecaster=reader).cdf)
    # a quarter of the probability around 80, three quarters around 350
    assert cdf[int(200 * 200 / 500)] == pytest.approx(0.25, abs=0.02)
    assert summary(cdf, violations.scale)["median"] == pytest.approx(350, abs=15)


def test_with_htmx_the_panel_the_community_and_the_chart_are_swapped(reader, reader_client, violations):
    _forecast(violations, median=300, low=200, high=400)
    response = _submit(reader_client, violations, {"median": "100", "low": "50", "high": "150"}, **PANEL)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith('<section class="panel" id="your-forecast"') and "data-forecast-saved" in body
    assert 'hx-swap-oob="innerHTML:[data-community-continuous]"' in body
    assert 'hx-swap-oob="innerHTML:[data-density-figure]"' in body
    assert 'class="line mine"' in body  # the reader's density over the community's
    assert Prediction.objects.filter(forecaster=reader).count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"median": "", "low": "60", "high": "220"}, "median", "Give the median."),
        ({"median": "lots", "low": "60", "high": "220"}, "median", "The median must be a number, like 120"),
        (
            {"median": "120", "low": "130", "high": "220"},
            "low",
            "The low end must be below the median (120 violations).",
        ),
        ({"median": "120", "low": "60", "high": "100"}, "high", "The high end must be above the median"),
        ({"median": "-20", "low": "-40", "high": "-10"}, "high", "Your whole interval is below the range"),
        (
            {"median": "120", "low": "60", "high": "220", "median_2": "300"},
            "low_2",
            "Give the low of estimate 2 too, or leave its three values empty.",
        ),
        ({"median": "120", "low": "60", "high": "220", "weight": "0"}, "weight", "A weight must be above 0"),
    ],
)
def test_a_bad_forecast_answers_400_next_to_the_field_and_saves_nothing(
    reader_client, violations, data, field, message
):
    response = _submit(reader_client, violations, data, **PANEL)
    assert response.status_code == 400
    body = response.content.decode()
    error_list = re.search(rf'<ul class="errorlist" id="id_{field}-{violations.pk}_error">(.*?)</ul>', body)
    assert error_list and message in error_list.group(1), body
    assert re.search(rf'aria-invalid="true"[^>]*id="id_{field}-{violations.pk}"', body)
    assert not Prediction.objects.exists() and not AggregateSnapshot.objects.exists()
    page = _submit(reader_client, violations, data)  # without JavaScript: the page again, 400
    assert page.status_code == 400 and message in page.content.decode()
    assert not Prediction.objects.exists()


def test_a_service_refusal_is_shown_above_the_form(reader_client, violations):
    Question.objects.filter(pk=violations.pk).update(status=Question.Status.CLOSED)
    response = _submit(reader_client, violations, {"median": "120", "low": "60", "high": "220"}, **PANEL)
    assert response.status_code == 400
    assert "no longer takes forecasts" in response.content.decode()
    assert not Prediction.objects.exists()


def test_yes_no_and_multiple_choice_forecasts_still_work(reader, reader_client, question):
    assert _submit(reader_client, question, {"probability": "35"}).status_code == 302
    assert Prediction.objects.get(question=question).probability == Decimal("0.35")
    choice = multiple_choice_question(labels=("Red", "Green"))
    red, green = choice.options.all()
    assert _submit(reader_client, choice, {f"option_{red.pk}": "70", f"option_{green.pk}": "30"}).status_code == 302
    assert Prediction.objects.get(question=choice).probability_vector() == [0.7, 0.3]


# --- the preview ---------------------------------------------------------------------------------------


def test_the_preview_draws_the_density_and_the_cdf_and_writes_nothing(reader_client, violations):
    _forecast(violations, median=300, low=200, high=400)
    before = (Prediction.objects.count(), AggregateSnapshot.objects.count(), QuestionEvent.objects.count())
    with CaptureQueriesContext(connection) as queries:
        response = _preview(reader_client, violations, {"median": "120", "low": "60", "high": "220"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert body.count("<svg") >= 2 and 'class="density-chart"' in body and 'class="cdf-chart"' in body
    assert 'class="line mine"' in body and 'class="area community"' in body  # over the community's
    summary_line = re.search(r"Your forecast would be: <strong>median (\d+) violations \(80%: ([\d.]+) – (\d+)", body)
    assert summary_line and [float(x) for x in summary_line.groups()] == pytest.approx([120, 60, 220], abs=5)
    assert "The outcome cannot fall below 0 violations" in body  # why the percentiles moved a little
    assert "Above 500 violations" in body  # the open end's box
    writes = [q["sql"] for q in queries.captured_queries if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"])]
    assert not writes
    assert (Prediction.objects.count(), AggregateSnapshot.objects.count(), QuestionEvent.objects.count()) == before


def test_anyone_who_sees_the_question_may_preview_a_date_forecast(client, talks):
    response = _preview(client, talks, {"median": "2026-06-15", "low": "2026-04-01", "high": "2026-09-30"})
    assert response.status_code == 200
    assert re.search(r"median 1\d Jun 2026", response.content.decode())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Give the median."),
        ({"median": "120", "low": "130", "high": "220"}, "The low end must be below the median"),
        ({"median": "120", "low": "x", "high": "220"}, "The low end must be a number"),
    ],
)
def test_a_preview_of_bad_values_says_what_to_fix(reader_client, violations, data, message):
    response = _preview(reader_client, violations, data)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="errorlist preview-errors"' in body and message in body and "<svg" not in body


def test_the_preview_is_for_numeric_and_date_questions_that_the_reader_may_see(reader_client, question):
    assert _preview(reader_client, question, {"median": "1"}).status_code == 404  # yes/no
    draft = numeric_question(0, 10, status=Question.Status.DRAFT)
    assert _preview(reader_client, draft, {"median": "5", "low": "2", "high": "8"}).status_code == 404
    url = reverse("forecast_preview", args=[draft.pk])
    assert reader_client.post(url, {"median": "5"}).status_code == 405


# --- the question page, the cards and the other pages --------------------------------------------------


@pytest.fixture
def crowd(violations, talks):
    """Both questions forecast by three readers."""
    readers = UserFactory.create_batch(3)
    for i, forecaster in enumerate(readers):
        _forecast(violations, forecaster, median=100 + 20 * i, low=50 + 10 * i, high=200 + 20 * i)
        start = talks.range_min
        services.prediction_create(
            question=talks,
            forecaster=forecaster,
            components=[{"median": start + (90 + i) * DAY, "low": start + 30 * DAY, "high": start + 200 * DAY}],
        )
    return readers


@pytest.fixture
def resolve(django_capture_on_commit_callbacks):
    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.question_resolve(**kwargs)

    return run


def test_the_question_page_shows_the_community_density_mine_and_the_fan(crowd, violations):
    reader = crowd[0]
    html = _client(reader).get(violations.get_absolute_url()).content.decode()
    text = _text(html)
    community = services.community_forecast(question=violations).probabilities
    median = summary(community, violations.scale)["median"]
    assert f"median {violations.format_value(median)}" in text
    assert re.search(r"\(80%: [\d.]+ – \d+ violations\)", text)
    assert 'class="area community"' in html and 'class="line mine"' in html
    assert "Above 500 violations" in html and 'data-tail="above"' in html
    assert 'class="fan"' in html and 'class="band"' in html  # the history
    assert "The chart's data as a table" in text
    assert "data-chart-url" not in html  # the yes/no chart's JSON is not asked for
    for method in ("recency_weighted_mean", "linear_pool", "quantile_average"):
        assert f'data-method="{method}"' in html
    assert "A number (violations) from 0 violations to 500 violations, or above the range." in text


def test_a_resolved_question_marks_the_outcome_and_explains_the_scores(crowd, violations, editor, resolve):
    resolve(question=violations, actor=editor, outcome="value", value=130.0, source="OSCE")
    html = _client(crowd[0]).get(violations.get_absolute_url()).content.decode()
    text = _text(html)
    assert "Resolved: 130 violations" in text
    assert 'class="outcome"' in html and "Outcome: 130 violations" in text
    assert 'data-score-kind="crps"' in html and 'data-score-kind="log"' in html
    assert "an even spread over the range" in text
    assert "3 forecasters scored." in text


def test_above_the_range_is_marked_in_the_open_end(crowd, violations, editor, resolve):
    resolve(question=violations, actor=editor, outcome="above", source="OSCE")
    html = _client(crowd[0]).get(violations.get_absolute_url()).content.decode()
    assert 'class="tail tail-above has-outcome"' in html
    assert "Outcome: Above the range" in _text(html)


def test_the_article_cards_show_the_median_and_the_interval(crowd, violations, talks):
    reader = crowd[0]
    for question in (violations, talks):
        html = _client(reader).get(question.article.get_absolute_url()).content.decode()
        card = re.search(rf'<section class="question-card[^"]*" id="q{question.pk}".*?</section>', html, re.S).group(0)
        text = _text(card)
        described = summary(services.community_forecast(question=question).probabilities, question.scale)
        assert f"community median {question.format_value(described['median'])} (80%: " in text
        assert "your median" in text and "3 forecasters" in text
        assert "data-sparkline" in card
        assert f'hx-target="#q{question.pk}"' in card  # the card's form is swapped in place


def test_a_card_with_its_form_is_answered_in_place(crowd, violations):
    reader = UserFactory()
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": f"q{violations.pk}"}
    response = _submit(_client(reader), violations, {"median": "90", "low": "40", "high": "150"}, **headers)
    assert response.status_code == 200
    assert "Your forecast is saved." in response.content.decode()
    assert re.search(r"your median 9[\d.]+ violations", _text(response.content.decode()))


@pytest.mark.parametrize("resolved", [False, True])
def test_every_page_with_numeric_and_date_questions_loads(crowd, violations, talks, editor, resolve, resolved):
    if resolved:
        resolve(question=violations, actor=editor, outcome="value", value=130.0, source="OSCE")
        resolve(question=talks, actor=editor, outcome="value", value=talks.range_min + 100 * DAY, source="AP")
    reader = crowd[0]
    pages = [
        violations.get_absolute_url(),
        talks.get_absolute_url(),
        violations.article.get_absolute_url(),
        talks.article.get_absolute_url(),
        reverse("question_list"),
        reverse("question_embed", args=[violations.pk]),
        reverse("question_embed", args=[talks.pk]),
        reverse("question_card_image", args=[violations.pk]),
        reverse("question_card_image", args=[talks.pk]),
        reverse("question_history", args=[violations.pk]),
        reverse("leaderboard"),
        reverse("article_leaderboard", args=[violations.article.slug]),
        reverse("track_record", args=[reader.username]),
        reverse("my_forecasts"),
        reverse("accuracy"),
        reverse("home"),
        reverse("editor_dashboard"),
        reverse("editor_question_preview", args=[violations.pk]),
        reverse("editor_question_edit", args=[talks.pk]),
        reverse("editor_question_resolve", args=[violations.pk]),
    ]
    for user in (None, reader, editor):
        client = _client(user) if user else Client()
        for url in pages:
            if url.startswith("/editor/") and user is not editor:
                continue
            if url == reverse("my_forecasts") and user is None:
                continue
            response = client.get(url)
            assert response.status_code == 200, (url, user, response.status_code)
            if response["Content-Type"].startswith("text/html"):
                html = response.content.decode()
                assert 'style="' not in html and not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url


def test_the_list_the_embed_and_my_forecasts_say_the_median(crowd, violations, talks):
    reader = crowd[0]
    client = _client(reader)
    text = _text(client.get(reverse("question_list")).content.decode())
    assert re.search(r"median \d+ violations \(80%: [\d.]+ – \d+ violations\) · 3 forecasters", text)
    assert re.search(r"median \d+ \w{3} 2026 \(80%: ", text)
    embed = _text(client.get(reverse("question_embed", args=[violations.pk])).content.decode())
    assert re.search(r"\d+ violations median \(80%: [\d.]+ – \d+ violations\)", embed)
    page = client.get(violations.get_absolute_url()).content.decode()
    assert re.search(r'<meta name="description" content="Readers&#x27; median: \d+ violations', page)
    mine = _text(client.get(reverse("my_forecasts")).content.decode())
    assert re.search(r"Median \d+ violations \(80%: [\d.]+ – \d+ violations\)", mine)


# --- editors: authoring --------------------------------------------------------------------------------


def _question_data(article, **changes) -> dict:
    data = {
        "article": article.pk,
        "title": "How many violations?",
        "resolution_criteria": "The OSCE's count for March.",
        "question_type": "numeric",
        "options": "",
        "opens_at": "2026-01-01T00:00",
        "closes_at": "2099-01-01T00:00",
    }
    return data | changes


def test_an_editor_creates_a_numeric_question(editor_client):
    article = ArticleFactory()
    page = editor_client.get(reverse("editor_question_create")).content.decode()
    assert 'name="range_min"' in page and 'type="date" name="range_start"' in page
    assert 'data-for-types="numeric date"' in page and "question_form.js" in page
    data = _question_data(article, range_min="0", range_max="1,000", open_upper_bound="on", unit="violations")
    data |= {"range_start": "", "range_end": ""}
    response = editor_client.post(reverse("editor_question_create"), data)
    assert response.status_code == 302, response.content.decode()
    question = Question.objects.get(title="How many violations?")
    assert question.question_type == "numeric" and (question.range_min, question.range_max) == (0, 1000)
    assert (question.open_lower_bound, question.open_upper_bound) == (False, True)
    assert question.unit == "violations" and question.zero_point is None


def test_an_editor_creates_a_log_scaled_question(editor_client):
    data = _question_data(ArticleFactory(), range_min="1", range_max="1000000", zero_point="0")
    assert editor_client.post(reverse("editor_question_create"), data).status_code == 302
    question = Question.objects.get()
    assert question.zero_point == 0 and question.scale.to_unit(1000) == pytest.approx(0.5)


def test_an_editor_creates_a_date_question_from_days(editor_client):
    data = _question_data(ArticleFactory(), question_type="date", range_start="2026-03-01", range_end="2026-12-31")
    data |= {"open_lower_bound": "on", "range_min": "garbage left over", "unit": "ignored"}
    response = editor_client.post(reverse("editor_question_create"), data)
    assert response.status_code == 302, response.content.decode()
    question = Question.objects.get()
    assert question.range_min == date_to_epoch(dt.date(2026, 3, 1))
    assert question.range_max == date_to_epoch(dt.date(2026, 12, 31))
    assert question.open_lower_bound and not question.open_upper_bound and question.unit == ""
    assert question.format_value(question.range_max) == "31 Dec 2026"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"range_min": "", "range_max": "10"}, "range_min", "needs the low end of its range"),
        ({"range_min": "10", "range_max": "5"}, "range_max", "must be above the low end"),
        ({"range_min": "1", "range_max": "100", "zero_point": "50"}, "zero_point", "outside the range"),
        ({"range_min": "ten", "range_max": "100"}, "range_min", "must be a number"),
        (
            {"question_type": "date", "range_start": "2026-05-01", "range_end": "2026-04-01"},
            "range_end",
            "The last day must come after the first day.",
        ),
        ({"question_type": "date", "range_start": "2026-05-01"}, "range_end", "needs the last day of its range"),
    ],
)
def test_a_bad_range_is_refused_next_to_its_field(editor_client, changes, field, message):
    response = editor_client.post(reverse("editor_question_create"), _question_data(ArticleFactory(), **changes))
    assert response.status_code == 400
    body = response.content.decode()
    block = re.search(rf'<div class="desk-field has-error" data-field="{field}">(.*?)</div>', body, re.S)
    assert block and message in block.group(1), body
    assert not Question.objects.exists()


def test_editing_a_draft_date_question_keeps_its_exact_range(editor, editor_client):
    first = dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)
    question = date_question(first, first + dt.timedelta(days=200), status=Question.Status.DRAFT)
    form = editor_client.get(reverse("editor_question_edit", args=[question.pk])).content.decode()
    assert 'name="range_start" value="2026-03-01"' in form
    data = _question_data(
        question.article,
        title="Renamed?",
        question_type="date",
        range_start="2026-03-01",
        range_end=(first + dt.timedelta(days=200)).date().isoformat(),
        open_upper_bound="on",
        resolution_criteria=question.resolution_criteria,
        opens_at=question.opens_at.strftime("%Y-%m-%dT%H:%M"),
        closes_at=question.closes_at.strftime("%Y-%m-%dT%H:%M"),
    )
    assert editor_client.post(reverse("editor_question_edit", args=[question.pk]), data).status_code == 302
    question.refresh_from_db()
    assert question.title == "Renamed?" and question.range_min == first.timestamp()
    assert "range" not in question.events.latest("id").note


def test_an_opened_question_keeps_its_range_and_may_change_its_unit(editor_client, violations):
    form = editor_client.get(reverse("editor_question_edit", args=[violations.pk])).content.decode()
    assert re.search(r'name="range_max" value="500"[^>]*disabled', form)
    data = _question_data(
        violations.article,
        title=violations.title,
        resolution_criteria=violations.resolution_criteria,
        closes_at=violations.closes_at.strftime("%Y-%m-%dT%H:%M"),
        range_max="900",
        unit="incidents",
    )
    assert editor_client.post(reverse("editor_question_edit", args=[violations.pk]), data).status_code == 302
    violations.refresh_from_db()
    assert violations.range_max == 500 and violations.unit == "incidents"


# --- editors: resolving --------------------------------------------------------------------------------


def _resolve_post(client, question, data, *, page=False):
    url = reverse("question_resolve" if page else "editor_question_resolve", args=[question.pk])
    return client.post(url, {"source": "OSCE report", **data})


def test_an_editor_resolves_a_numeric_question_with_a_value(
    crowd, editor_client, violations, django_capture_on_commit_callbacks
):
    page = editor_client.get(violations.get_absolute_url()).content.decode()
    assert 'name="value"' in page and '<option value="above">Above the range (over 500 violations)</option>' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = _resolve_post(editor_client, violations, {"outcome": "value", "value": "130"}, page=True)
    assert response.status_code == 302
    resolution = Resolution.objects.get(question=violations)
    assert (resolution.outcome, resolution.value, resolution.source) == ("value", 130.0, "OSCE report")
    violations.refresh_from_db()
    assert violations.status == Question.Status.RESOLVED


def test_an_editor_resolves_a_date_question_with_a_day(editor_client, talks):
    page = editor_client.get(reverse("editor_question_resolve", args=[talks.pk])).content.decode()
    assert 'type="date" name="value"' in page
    response = _resolve_post(editor_client, talks, {"outcome": "value", "value": "2026-07-04"})
    assert response.status_code == 302, response.content.decode()
    resolution = Resolution.objects.get(question=talks)
    assert resolution.value == date_to_epoch(dt.date(2026, 7, 4)) and resolution.describe() == "4 Jul 2026"


def test_an_editor_resolves_above_the_range_without_a_value(editor_client, violations):
    assert _resolve_post(editor_client, violations, {"outcome": "above", "value": ""}).status_code == 302
    resolution = Resolution.objects.get(question=violations)
    assert resolution.outcome == Resolution.Outcome.ABOVE and resolution.value is None


def test_a_closed_range_resolves_to_a_value_only(editor_client):
    question = numeric_question(0, 10, open_upper=False)
    page = editor_client.get(reverse("editor_question_resolve", args=[question.pk])).content.decode()
    assert '<input type="hidden" name="outcome" value="value"' in page
    response = _resolve_post(editor_client, question, {"value": "11"})
    assert response.status_code == 400
    block = re.search(
        r'<div class="desk-field has-error" data-field="value">(.*?)</div>', response.content.decode(), re.S
    )
    assert block and "above the range, whose high end is closed" in block.group(1)
    assert not Resolution.objects.exists()
    assert _resolve_post(editor_client, question, {"value": "7.5"}).status_code == 302
    assert Resolution.objects.get(question=question).value == 7.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"outcome": "value", "value": ""}, "Give the value the question resolves to."),
        ({"outcome": "value", "value": "many"}, "The value must be a number"),
        ({"outcome": "below", "value": ""}, "Select a valid choice"),  # the low end is closed
    ],
)
def test_a_bad_resolution_is_refused_next_to_its_field(editor_client, violations, data, message):
    response = _resolve_post(editor_client, violations, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Resolution.objects.exists()


def test_a_day_is_stored_as_its_noon_so_that_it_reads_as_that_day(talks):
    """A forecast's percentiles are never exactly the day typed: noon leaves half a day either way."""
    noon = date_to_epoch(dt.date(2026, 6, 15))
    assert dt.datetime.fromtimestamp(noon, tz=dt.UTC) == dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
    assert talks.format_value(noon - 6 * 3600) == talks.format_value(noon + 6 * 3600) == "15 Jun 2026"
