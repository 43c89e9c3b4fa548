"""Hostile input at the API's edge: every answer is a 4xx with the API's JSON error body, never a 500
and never an HTML page under /api/."""

import datetime as dt
import json

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from forecasting.models import Prediction
from tests.api_helpers import assert_error, client_for
from webapp import errors

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

HUGE_ID = "1" * 25


@pytest.fixture
def safe_client():
    """A client that answers the error page instead of re-raising the server's exception."""
    return APIClient(raise_request_exception=False)


@pytest.mark.parametrize("url", ["/api/v1/predictions/", "/api/v1/scores/"])
def test_a_25_digit_id_in_a_filter_is_a_400_naming_the_parameter(reader, url):
    client = client_for(reader)
    client.raise_request_exception = False
    assert_error(client.get(url, {"question": HUGE_ID}), 400, "invalid", fields=("question",))


@pytest.mark.parametrize(
    "url", ["/api/v1/questions/{id}/", "/api/v1/questions/{id}/aggregates/", "/api/v1/model-runs/{id}/"]
)
def test_a_25_digit_id_in_the_path_is_a_404(editor, url):
    client = client_for(editor)
    client.raise_request_exception = False
    assert_error(client.get(url.format(id=HUGE_ID)), 404, "not_found")


def test_a_deeply_nested_json_body_is_a_400(reader, question):
    client = client_for(reader)
    client.raise_request_exception = False
    response = client.post("/api/v1/predictions/", "[" * 10_000, content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_a_deeply_nested_json_body_to_the_token_endpoint_is_a_400(safe_client):
    response = safe_client.post("/api/v1/auth/token/", "[" * 10_000, content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_an_11_mb_body_is_a_413(reader, question, content_type):
    client = client_for(reader)
    client.raise_request_exception = False
    pad = "x" * 11_000_000
    body = f'{{"question": {question.pk}, "probability": "0.5", "pad": "{pad}"}}'
    if content_type != "application/json":
        body = f"question={question.pk}&probability=0.5&pad={pad}"
    response = client.post("/api/v1/predictions/", body, content_type=content_type)
    assert_error(response, 413, "request_too_large")
    assert not Prediction.objects.exists()


def test_an_11_mb_body_to_the_token_endpoint_is_a_413(safe_client):
    body = '{"username": "alice", "password": "' + "x" * 11_000_000 + '"}'
    response = safe_client.post("/api/v1/auth/token/", body, content_type="application/json")
    assert_error(response, 413, "request_too_large")


def test_a_csrf_failure_with_session_auth_is_a_json_403(reader, question):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reader)
    response = client.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.5"}, format="json")
    assert_error(response, 403, "permission_denied")


def test_a_csrf_failure_in_django_s_middleware_under_api_is_a_json_403():
    """Django's CsrfViewMiddleware (views that are not DRF's) answers through CSRF_FAILURE_VIEW."""
    response = errors.csrf_failure(RequestFactory().post("/api/v1/anything/"), reason="CSRF cookie not set.")
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "permission_denied"


def test_a_csrf_failure_outside_the_api_keeps_django_s_page():
    response = errors.csrf_failure(RequestFactory().post("/questions/1/forecast/"), reason="CSRF cookie not set.")
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")


def test_a_server_error_under_api_is_json():
    response = errors.server_error(RequestFactory().get("/api/v1/questions/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert set(json.loads(response.content)["error"]) == {"code", "message", "fields"}


def test_an_11_mb_form_outside_the_api_is_a_413_page(reader, question):
    client = Client(raise_request_exception=False)
    client.force_login(reader)
    body = "probability=0.5&pad=" + "x" * 11_000_000
    response = client.post(
        f"/questions/{question.pk}/forecast/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/nope/", "/api/", "/api/v2/questions/", "/api/v1/questions"])
def test_an_unmatched_route_under_api_is_a_json_404(path):
    assert_error(Client().get(path), 404, "not_found")


def test_an_unmatched_route_under_api_is_a_json_404_for_a_post_too():
    assert_error(Client(enforce_csrf_checks=True).post("/api/nowhere/", {"a": 1}), 404, "not_found")


def test_pages_outside_the_api_keep_html_404s():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/downloads/", {"article": "a\x00b", "table": "questions"}),
        ("/api/v1/questions/", {"article": "a\x00b"}),
        ("/api/v1/articles/", {"section": "World\x00"}),
    ],
)
def test_a_nul_character_in_a_query_parameter_is_a_400(analyst, url, params):
    # PostgreSQL text cannot hold NUL: sent on to the database, the filter answered 500.
    client = client_for(analyst)
    client.raise_request_exception = False
    assert_error(client.get(url, params), 400, "invalid")


def test_a_nul_character_in_a_page_s_query_string_is_a_400_page(reader):
    response = Client(raise_request_exception=False).get("/", {"q": "\x00"})
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


def test_a_time_filter_with_an_offset_postgresql_refuses_is_read_as_utc(reader, question):
    # +19:36 is a valid offset to Python but outside PostgreSQL's ±15:59: the filter answered 500.
    client = client_for(reader)
    client.raise_request_exception = False
    closes = question.closes_at.astimezone(dt.timezone(dt.timedelta(hours=19, minutes=36)))
    just_after = (closes + dt.timedelta(seconds=1)).isoformat()
    just_before = (closes - dt.timedelta(seconds=1)).isoformat()
    ids = lambda response: [row["id"] for row in response.json()["results"]]  # noqa: E731

    assert ids(client.get("/api/v1/questions/", {"closes_before": just_after})) == [question.pk]
    assert ids(client.get("/api/v1/questions/", {"closes_before": just_before})) == []
    assert ids(client.get("/api/v1/questions/", {"closes_after": just_before})) == [question.pk]


def test_a_time_filter_that_leaves_the_calendar_in_utc_is_a_400(reader):
    client = client_for(reader)
    client.raise_request_exception = False
    response = client.get("/api/v1/questions/", {"closes_before": "0001-01-01T00:30:00+01:00"})
    assert_error(response, 400, "invalid", fields=("closes_before",))
