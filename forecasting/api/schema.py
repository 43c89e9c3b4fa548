"""OpenAPI details: the error body on every operation, documented once as a component."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Invalid input. `error.fields` lists each invalid field's messages; `error.message` says what is wrong.",
    401: "Not authenticated: send `Authorization: Token <key>` (or sign in).",
    403: "Authenticated, but not allowed to do this.",
    404: "Not found (or not visible to you).",
    429: "Too many requests (`throttled`) or, for logins, too many failed passwords (`locked_out`): "
    "wait the seconds the `Retry-After` header gives.",
}
THROTTLED_WRITES = ("POST", "PUT", "PATCH", "DELETE")


class ErrorDetailSerializer(serializers.Serializer):
    """What went wrong: a machine-readable code, a message for people, and the invalid fields."""

    # ``fields`` can't be a class attribute (it is the serializer's own API), hence get_fields().
    def get_fields(self) -> dict:
        return {
            "code": serializers.CharField(
                help_text="Machine-readable: `invalid` (400), `parse_error` (400), `not_authenticated` and "
                "`authentication_failed` (401), `permission_denied` (403), `not_found` (404), "
                "`method_not_allowed` (405), `request_too_large` (413), `unsupported_media_type` (415), "
                "`throttled` and `locked_out` (429)."
            ),
            "message": serializers.CharField(help_text="What went wrong, for people."),
            "fields": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                help_text="Each invalid input field (dotted for nested ones, e.g. `option_probabilities.1`) "
                "with its messages; empty when the error is not about one field.",
            ),
        }


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's schema, plus the error responses each view declares in ``error_codes``.

    ``error_codes`` is a tuple of status codes, or a dict from HTTP method to such a tuple.
    """

    def _error_codes(self) -> tuple[int, ...]:
        codes = getattr(self.view, "error_codes", ())
        if isinstance(codes, dict):
            codes = codes.get(self.method.upper(), ())
        # A view's writes are throttled when it has a scope (forecasting.api.throttles.WriteRateThrottle).
        if getattr(self.view, "throttle_scope", None) and self.method.upper() in THROTTLED_WRITES:
            codes = (*codes, 429)
        return tuple(codes)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            response = OpenApiResponse(response=ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
            responses.setdefault(str(code), self._get_response_for_code(response, str(code), direction=direction))
        return responses
