"""Request body parsers that turn hostile bodies into 400s instead of server errors."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, but a body nested too deeply for the decoder (``[[[[...``) is a 400.

    ``json.loads`` raises ``RecursionError`` on deep nesting, which DRF does not catch (it catches
    ``ValueError`` only), so a 10 kB body would otherwise be a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
