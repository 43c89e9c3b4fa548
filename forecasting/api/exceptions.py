"""One error body for every API error, whoever raised it.

``{"error": {"code": "...", "message": "...", "fields": {field: [messages]}}}``

- DRF's own errors keep their status and code (``not_authenticated`` 401, ``permission_denied``
  403, ``not_found`` 404, ``method_not_allowed`` 405, ``parse_error`` 400, ``throttled`` 429...);
  validation errors have the code ``invalid`` and list each field's messages under ``fields``
  (nested fields dotted: ``option_probabilities.1``), the other messages in ``message``.
- Django's ``ValidationError`` and ``PermissionDenied``, which the services raise, become 400
  and 403 with the services' messages; ``Http404`` becomes 404; a body over Django's
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``RequestDataTooBig``) becomes 413 ``request_too_large``.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

INVALID = "invalid"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _from_django(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {
                (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
                for field, messages in exc.message_dict.items()
            }
        else:
            detail = list(exc.messages)
        return exceptions.ValidationError(detail)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    return exc


def _flatten(detail, prefix: str, non_field: list[str], fields: dict[str, list[str]]) -> None:
    """Split a DRF error detail into non-field messages and ``{dotted.field: [messages]}``."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if not prefix and key == api_settings.NON_FIELD_ERRORS_KEY:
                _flatten(value, "", non_field, fields)
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
                if name.endswith(f".{api_settings.NON_FIELD_ERRORS_KEY}"):
                    name = name.rsplit(".", 1)[0]
                _flatten(value, name, non_field, fields)
    elif isinstance(detail, list | tuple):
        for i, item in enumerate(detail):
            if isinstance(item, dict | list | tuple):
                _flatten(item, f"{prefix}.{i}" if prefix else str(i), non_field, fields)
            elif prefix:
                fields.setdefault(prefix, []).append(str(item))
            else:
                non_field.append(str(item))
    elif prefix:
        fields.setdefault(prefix, []).append(str(detail))
    else:
        non_field.append(str(detail))


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def api_exception_handler(exc: Exception, context: dict):
    """DRF ``EXCEPTION_HANDLER``: DRF's handler (status, headers, rollback), then our body."""
    exc = _from_django(exc)
    response = exception_handler(exc, context)
    if response is None:  # not an API error: a bug, left to Django's 500 handling and logging
        return None
    if isinstance(exc, exceptions.ValidationError):
        non_field: list[str] = []
        fields: dict[str, list[str]] = {}
        _flatten(exc.detail, "", non_field, fields)
        if non_field:
            message = " ".join(non_field)
        else:
            message = "Invalid input: " + "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        response.data = error_body(INVALID, message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        if isinstance(detail, dict | list):  # an APIException raised with a structured detail
            non_field, fields = [], {}
            _flatten(detail, "", non_field, fields)
            response.data = error_body(code, " ".join(non_field) or str(exc.default_detail), fields)
        else:
            response.data = error_body(code, str(detail))
    return response


@csrf_exempt  # it writes nothing: an unknown path is a 404 whatever the method, not a CSRF 403
def not_found(request, *args, **kwargs) -> JsonResponse:
    """A JSON 404 for unknown paths under ``/api/`` (Django's would be an HTML page)."""
    return JsonResponse(
        error_body("not_found", f"No API endpoint at {request.path}."), status=status.HTTP_404_NOT_FOUND
    )
