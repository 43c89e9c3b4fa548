"""The exception handler: every error, DRF's or the services' (Django's), has the same body."""

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions

from forecasting.api.exceptions import api_exception_handler


def handle(exc):
    response = api_exception_handler(exc, {})
    return response.status_code, response.data["error"]


def test_service_validation_error_with_fields_is_a_400_with_fields():
    status, error = handle(DjangoValidationError({"probability": "Too high.", "__all__": "Closed."}))
    assert status == 400
    assert error == {"code": "invalid", "message": "Closed.", "fields": {"probability": ["Too high."]}}


def test_service_validation_error_without_fields_is_a_400_message():
    status, error = handle(DjangoValidationError("This question is closed."))
    assert (status, error) == (400, {"code": "invalid", "message": "This question is closed.", "fields": {}})


def test_service_permission_denied_is_a_403_with_its_message():
    status, error = handle(DjangoPermissionDenied("You need the resolve question permission."))
    assert (status, error["code"], error["message"]) == (
        403,
        "permission_denied",
        "You need the resolve question permission.",
    )


def test_http404_is_a_404():
    status, error = handle(Http404("No Question matches the given query."))
    assert (status, error["code"]) == (404, "not_found")


def test_nested_drf_errors_are_dotted_and_summarised():
    detail = {"option_probabilities": {1: ["Too high."]}, "legs": [{"side": ["Bad."]}, {}], "title": ["Required."]}
    status, error = handle(exceptions.ValidationError(detail))
    assert status == 400
    assert error["fields"] == {"option_probabilities.1": ["Too high."], "legs.0.side": ["Bad."], "title": ["Required."]}
    assert error["message"].startswith("Invalid input: option_probabilities.1: Too high.")


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (exceptions.NotAuthenticated(), 401, "not_authenticated"),
        (exceptions.AuthenticationFailed("Invalid token."), 401, "authentication_failed"),
        (exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (exceptions.Throttled(wait=3), 429, "throttled"),
        (exceptions.UnsupportedMediaType("text/csv"), 415, "unsupported_media_type"),
    ],
)
def test_drf_errors_keep_their_status_and_code(exc, status, code):
    assert handle(exc)[0] == status and handle(exc)[1]["code"] == code


def test_unexpected_errors_are_left_to_django():
    assert api_exception_handler(RuntimeError("bug"), {}) is None
