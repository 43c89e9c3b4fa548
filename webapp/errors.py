"""The site's error pages: the API's JSON error body under ``/api/``, Django's HTML pages elsewhere.

Routed by ``handler400``... in ``webapp/urls.py`` and ``CSRF_FAILURE_VIEW`` in the settings, so that
errors Django raises before (or outside) a DRF view, such as a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE``, a CSRF failure or a crash, never answer an HTML page to an API client.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults

from forecasting.api.exceptions import error_body

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Django answers every SuspiciousOperation with a 400; a body that is too large deserves 413.
    too_large = isinstance(exception, RequestDataTooBig)
    if is_api(request):
        if too_large:
            return json_error(413, "request_too_large", "The request body is too large.")
        return json_error(400, "bad_request", "The request could not be understood.")
    response = defaults.bad_request(request, exception)
    if too_large:
        response.status_code = 413
    return response


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return json_error(403, "permission_denied", str(exception or "") or "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return json_error(404, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return json_error(500, "server_error", "A server error occurred.")
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api(request):
        return json_error(403, "permission_denied", f"CSRF Failed: {reason}")
    return csrf.csrf_failure(request, reason)
