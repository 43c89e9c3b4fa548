"""Request hygiene shared by every app, before any view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .errors import is_api, json_error

NUL = "\x00"


class RejectNulBytesMiddleware:
    """A NUL character in a query parameter is a 400, not a database error.

    PostgreSQL text cannot hold NUL, so a filter such as ``?article=a%00b`` would otherwise reach the
    database and answer 500. Form and JSON bodies are already covered: Django's and DRF's
    ``CharField`` reject NUL (``ProhibitNullCharactersValidator``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any(NUL in key or any(NUL in value for value in values) for key, values in request.GET.lists()):
            message = "Query parameters cannot contain NUL characters."
            if is_api(request):
                return json_error(400, "invalid", message)
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
