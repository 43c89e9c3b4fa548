"""Fields other apps add to the question API, so that forecasting need not know them.

Forecasting never imports the apps built on it (the market); an app adds a field to the
question's detail (``QuestionDetailSerializer``) by registering it here from its
``AppConfig.ready()``::

    register_question_field("market", MarketField)

``make_field`` is called with no arguments for each serializer instance and returns a read-only
DRF field that reads the question (``source="*"``); its schema comes from the field itself
(``extend_schema_field``). Extra fields come after the question's own summary fields
(``aggregates_url``) and before ``download_url``, in the order they were registered.
"""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.fields import Field

_question_fields: dict[str, Callable[[], Field]] = {}


def register_question_field(name: str, make_field: Callable[[], Field]) -> None:
    """Add the field ``name`` to the question's detail; registering a name again replaces it."""
    _question_fields[name] = make_field


def question_fields() -> dict[str, Field]:
    """A new instance of every registered question field, by name, in the order registered."""
    return {name: make_field() for name, make_field in _question_fields.items()}
