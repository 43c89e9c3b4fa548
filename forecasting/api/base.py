"""What every API view shares, in every app: the base view, the documented error codes, helpers.

The base view sets authentication, permissions, pagination, filtering, the schema class and the
exception handler itself, so that the API does not depend on the project's DRF defaults.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny

from .exceptions import api_exception_handler
from .pagination import PageNumberPagination
from .parsers import SafeJSONParser
from .schema import ApiAutoSchema
from .throttles import WriteRateThrottle

# The error responses a view documents (its ``error_codes``), by kind of endpoint.
PUBLIC_READ = (400, 404)
OWN_DATA = (400, 401, 404)
RESTRICTED = (400, 401, 403, 404)


class ApiView:
    """What every API view shares; set here so that the API does not depend on project defaults."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]
    # Writes of views with a ``throttle_scope`` are rate-limited (rates: webapp/api/conf.py).
    throttle_classes = [WriteRateThrottle]
    pagination_class = PageNumberPagination
    filter_backends = [DjangoFilterBackend]
    schema = ApiAutoSchema()
    error_codes: tuple[int, ...] | dict[str, tuple[int, ...]] = ()

    def get_exception_handler(self):
        return api_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        # django-axes marks a locked-out login on the request it authenticated: DRF's wrapper, which
        # its middleware never sees. Hand the mark to Django's request, so that the middleware
        # answers the lockout (429, forecasting.api.throttles.lockout_response).
        if getattr(request, "axes_locked_out", False) and request._request is not request:
            request._request.axes_locked_out = True
            request._request.axes_credentials = getattr(request, "axes_credentials", None)
        return super().finalize_response(request, response, *args, **kwargs)


def validated(serializer_class, data, **kwargs) -> dict:
    """``data`` checked by an input serializer (a 400 with the invalid fields if it is not)."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def absolute_url(request, url: str) -> str:
    """``url`` made absolute for the request (left as it is without one, e.g. in the schema)."""
    return request.build_absolute_uri(url) if request is not None else url
