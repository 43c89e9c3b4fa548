"""Authentication: the token endpoint, token and session authentication."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from forecasting.models import Prediction
from tests.api_helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

TOKEN_URL = "/api/v1/auth/token/"


def test_token_endpoint_gives_a_token_that_authenticates(api, reader, question):
    response = api.post(TOKEN_URL, {"username": "alice", "password": "correct horse battery"}, format="json")
    assert response.status_code == 200, response.json()
    key = response.json()["token"]
    assert Token.objects.get(user=reader).key == key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    created = client.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.6"}, format="json")
    assert created.status_code == 201
    assert Prediction.objects.get().forecaster == reader
    # The same token again, not a new one.
    again = api.post(TOKEN_URL, {"username": "alice", "password": "correct horse battery"}, format="json")
    assert again.json()["token"] == key


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({}, ("username", "password")),
        ({"username": "alice"}, ("password",)),
    ],
)
def test_token_endpoint_missing_fields_is_a_400(api, reader, data, fields):
    assert_error(api.post(TOKEN_URL, data, format="json"), 400, "invalid", fields=fields)


def test_token_endpoint_wrong_password_is_a_400_without_a_token(api, reader):
    response = api.post(TOKEN_URL, {"username": "alice", "password": "wrong"}, format="json")
    error = assert_error(response, 400, "invalid")
    assert "Unable to log in" in error["message"] and error["fields"] == {}
    assert not Token.objects.exists()


def test_a_bad_token_is_a_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(api.get("/api/v1/articles/"), 401, "authentication_failed")


def test_session_authentication_works_and_writes_need_the_csrf_token(reader, question):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reader)
    assert client.get("/api/v1/predictions/").status_code == 200
    response = client.post("/api/v1/predictions/", {"question": question.pk, "probability": "0.6"}, format="json")
    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]
    assert not Prediction.objects.exists()
