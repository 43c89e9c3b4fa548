"""Helpers for the REST API's tests (tests/forecasting/api, tests/market/api); the fixtures are in conftest.py."""

from rest_framework.test import APIClient


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response, status: int, code: str, *, fields: tuple[str, ...] = ()) -> dict:
    """The response is the API's error body with this status and code, naming these fields."""
    assert response.status_code == status, (response.status_code, getattr(response, "data", response.content))
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    for field in fields:
        assert field in error["fields"], error
        assert all(isinstance(m, str) and m for m in error["fields"][field])
    return error
