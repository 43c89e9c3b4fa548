"""The API's abuse limits: DRF throttles on writes, and the JSON answer to a login lockout.

- ``WriteRateThrottle``: a scoped throttle (``throttle_scope`` on the view; rates in
  ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) counting only writes, per user when signed in and
  per client address otherwise. Reads are never throttled here.
- ``lockout_response``: django-axes' ``AXES_LOCKOUT_CALLABLE``: after too many failed logins for a
  username from one address, a 429 with ``Retry-After``: the API's error body under ``/api/``, the
  site's 429 page elsewhere.
"""

from __future__ import annotations

from axes.helpers import get_cool_off
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from forecasting.ratelimit import client_ip, too_many_requests

from .exceptions import error_body

LOCKED_OUT = "Too many failed logins for this account from your address."


class WriteRateThrottle(ScopedRateThrottle):
    """``ScopedRateThrottle`` for POST, PUT, PATCH and DELETE only; rates read at each request."""

    def allow_request(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        # DRF binds THROTTLE_RATES when the class is defined; read the settings now instead, so that
        # a change of settings (an environment override, a test) takes effect.
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate for the scope {self.scope!r} in DEFAULT_THROTTLE_RATES.")
        return rates[self.scope]

    def get_ident(self, request) -> str:
        return client_ip(request)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    cool_off = get_cool_off(request)
    retry_after = max(int(cool_off.total_seconds()), 1) if cool_off else 24 * 60 * 60
    message = f"{LOCKED_OUT} Try again in {retry_after} seconds."
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body("locked_out", message), status=429)
        response["Retry-After"] = str(retry_after)
        return response
    return too_many_requests(request, retry_after, LOCKED_OUT)
