"""Numeric and date questions through the REST API: an editor creates and resolves them, a reader forecasts
with a median and an interval or a raw CDF, and everyone reads the range, the CDFs and the community's."""

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from forecasting.models import Prediction, Question, Resolution, Score
from tests.api_helpers import assert_error, client_for
from tests.factories import ArticleFactory, UserFactory, date_question, numeric_question

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

U = np.linspace(0.0, 1.0, 201)


def valid_cdf(centre=0.4):
    """A valid 201-point CDF on a range open at both ends: 1% below, 1% above, the rest a ramp around centre."""
    inside = np.clip((U - centre + 0.3) / 0.6, 0.0, 1.0) * 0.9 + 0.08 * U
    return (0.01 + inside).round(6).tolist()


def test_an_editor_creates_a_numeric_question_with_its_range(editor_api):
    now = timezone.now()
    data = {
        "article": ArticleFactory().slug,
        "title": "How many ceasefire violations in March?",
        "resolution_criteria": "The OSCE's count.",
        "question_type": "numeric",
        "range_min": 0,
        "range_max": 500,
        "open_upper_bound": True,
        "unit": "violations",
        "opens_at": (now + dt.timedelta(days=1)).isoformat(),
        "closes_at": (now + dt.timedelta(days=30)).isoformat(),
    }
    response = editor_api.post("/api/v1/questions/", data, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["question_type"], body["range_min"], body["range_max"]) == ("numeric", 0.0, 500.0)
    assert (body["open_lower_bound"], body["open_upper_bound"], body["unit"]) == (False, True, "violations")
    question = Question.objects.get(pk=body["id"])
    assert question.is_continuous and question.range_max == 500


def test_a_numeric_question_without_a_range_is_a_400_naming_it(editor_api):
    now = timezone.now()
    data = {
        "article": ArticleFactory().slug,
        "title": "How many?",
        "resolution_criteria": "The count.",
        "question_type": "numeric",
        "opens_at": (now + dt.timedelta(days=1)).isoformat(),
        "closes_at": (now + dt.timedelta(days=30)).isoformat(),
    }
    error = assert_error(editor_api.post("/api/v1/questions/", data, format="json"), 400, "invalid")
    assert "range_min" in error["fields"]
    assert not Question.objects.exists()


def test_a_reader_forecasts_with_a_median_and_an_interval(reader_api, reader):
    question = numeric_question(0, 500, open_upper=True)
    data = {"question": question.pk, "components": [{"median": 120, "low": 80, "high": 200}]}
    response = reader_api.post("/api/v1/predictions/", data, format="json")
    assert response.status_code == 201, response.json()
    cdf = response.json()["cdf"]
    assert len(cdf) == 201 and cdf == Prediction.objects.get(forecaster=reader).cdf
    # the median and the interval are where the reader put them (positions 120/500, 80/500, 200/500)
    for p, value in ((0.1, 80), (0.5, 120), (0.9, 200)):
        assert float(np.interp(p, cdf, U * 500)) == pytest.approx(value, abs=3)


def test_a_reader_sends_a_raw_cdf_as_metaculus_stores_it(reader_api):
    question = numeric_question(0, 100, open_lower=True, open_upper=True)
    cdf = valid_cdf()
    response = reader_api.post("/api/v1/predictions/", {"question": question.pk, "cdf": cdf}, format="json")
    assert response.status_code == 201, response.json()
    np.testing.assert_allclose(response.json()["cdf"], cdf, atol=1e-6)


@pytest.mark.parametrize(
    ("cdf", "words"),
    [
        (lambda c: c[:200], "201"),
        (lambda c: [*c[:100], c[100] - 0.2, *c[101:]], "non-decreasing"),
        (lambda c: [1.5, *c[1:]], ""),
        (lambda c: [0.0, *c[1:]], "below"),  # an open lower bound needs mass below the range
    ],
)
def test_a_bad_cdf_is_a_400_and_saves_nothing(reader_api, cdf, words):
    question = numeric_question(0, 100, open_lower=True, open_upper=True)
    data = {"question": question.pk, "cdf": cdf(valid_cdf())}
    error = assert_error(reader_api.post("/api/v1/predictions/", data, format="json"), 400, "invalid")
    assert "cdf" in " ".join(error["fields"])
    assert words.lower() in str(error).lower()
    assert not Prediction.objects.exists()


def test_an_interval_that_does_not_contain_the_median_is_a_400(reader_api):
    question = numeric_question(0, 100)
    data = {"question": question.pk, "components": [{"median": 50, "low": 60, "high": 80}]}
    assert_error(reader_api.post("/api/v1/predictions/", data, format="json"), 400, "invalid")
    assert not Prediction.objects.exists()


def test_a_probability_on_a_numeric_question_is_a_400(reader_api):
    question = numeric_question(0, 100)
    data = {"question": question.pk, "probability": "0.5"}
    assert_error(reader_api.post("/api/v1/predictions/", data, format="json"), 400, "invalid")


def test_the_question_shows_its_range_and_the_community_distribution(api, reader_api):
    question = numeric_question(0, 100, unit="km")
    for median in (30, 60):
        reader = UserFactory()
        data = {"question": question.pk, "components": [{"median": median, "low": median - 10, "high": median + 10}]}
        assert client_for(reader).post("/api/v1/predictions/", data, format="json").status_code == 201
    body = api.get(f"/api/v1/questions/{question.pk}/").json()
    assert (body["range_min"], body["range_max"], body["unit"]) == (0.0, 100.0, "km")
    assert body["community"]["forecasters"] == 2
    community = body["community"]["probabilities"]
    assert len(community) == 201 and float(np.interp(0.5, community, U * 100)) == pytest.approx(45, abs=2)
    methods = {aggregate["method"] for aggregate in body["aggregates"]}
    assert {"learnt_pool", "linear_pool", "recency_weighted_mean", "quantile_average"} <= methods


def test_an_editor_resolves_a_numeric_question_by_value_and_it_is_scored(
    editor_api, reader_api, reader, django_capture_on_commit_callbacks
):
    question = numeric_question(0, 100, open_upper=True)
    data = {"question": question.pk, "components": [{"median": 40, "low": 30, "high": 55}]}
    assert reader_api.post("/api/v1/predictions/", data, format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):  # the scoring task queued after commit
        response = editor_api.post(f"/api/v1/questions/{question.pk}/resolve/", {"value": 42, "source": "OSCE"})
    assert response.status_code == 200, response.json()
    resolution = Resolution.objects.get(question=question)
    assert (resolution.outcome, resolution.value) == ("value", 42.0)
    assert Score.objects.filter(question=question, forecaster=reader, kind="crps").exists()


def test_a_value_past_the_open_end_resolves_above(editor_api):
    question = numeric_question(0, 100, open_upper=True)
    assert editor_api.post(f"/api/v1/questions/{question.pk}/resolve/", {"value": 250}).status_code == 200
    assert Resolution.objects.get(question=question).outcome == "above"


def test_below_a_closed_end_is_a_400(editor_api):
    question = numeric_question(0, 100, open_lower=False)
    assert_error(editor_api.post(f"/api/v1/questions/{question.pk}/resolve/", {"outcome": "below"}), 400, "invalid")
    assert not Resolution.objects.exists()


def test_an_editor_resolves_a_date_question_by_date(editor_api):
    first, last = dt.datetime(2027, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 12, 31, tzinfo=dt.UTC)
    question = date_question(first, last)
    response = editor_api.post(f"/api/v1/questions/{question.pk}/resolve/", {"date": "2027-03-14T12:00:00Z"})
    assert response.status_code == 200, response.json()
    resolution = Resolution.objects.get(question=question)
    assert resolution.value == dt.datetime(2027, 3, 14, 12, tzinfo=dt.UTC).timestamp()


def test_a_reader_may_not_resolve(reader_api):
    question = numeric_question(0, 100)
    assert reader_api.post(f"/api/v1/questions/{question.pk}/resolve/", {"value": 42}).status_code == 403
    assert not Resolution.objects.exists()
