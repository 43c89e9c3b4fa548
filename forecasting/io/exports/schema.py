"""The vocabulary of the exports' tables: column types, columns, and the spec of a table.

A table spec (``Table``) declares each column once (name, type, description) and says where its
rows come from: the CSV header, the Parquet schema, the ``README.md`` inside every ZIP and the
analyst page are all generated from it, so the code and its documentation cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
from django.db.models import Model, QuerySet

FORMATS = ("csv", "parquet")
DB_CHUNK_ROWS = 5_000  # rows fetched per round trip (server-side cursor on PostgreSQL)


class ExportError(Exception):
    """Bad export request: an unknown table or format, a bad filter. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ColumnType:
    arrow: pa.DataType
    csv: Callable[[Any], str]  # how a non-empty value is written in CSV
    doc: str  # what the type means, for the README
    to_arrow: Callable[[Any], Any] | None = None  # conversion before pyarrow, when not the value itself


def timestamp_text(value: dt.datetime) -> str:
    """A moment as ISO 8601 in UTC with microseconds, as every export writes it."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="microseconds")


def _decimal(value: Decimal) -> str:
    return format(value, "f")


# A spreadsheet opening a CSV runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe_text(value: Any) -> str:
    """A text cell for CSV, with a ``'`` before a leading formula character (OWASP's advice).

    Only text columns go through here: numbers such as -0.5 have their own types and stay numbers.
    """
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


TYPES: dict[str, ColumnType] = {
    "integer": ColumnType(pa.int64(), str, "integer (Parquet int64)"),
    "text": ColumnType(
        pa.string(),
        spreadsheet_safe_text,
        "text (UTF-8); CSV: a value that starts with =, +, -, @, a tab or a carriage return gets a leading ' "
        "so that spreadsheets show it as text instead of running it as a formula; Parquet: exactly as stored",
    ),
    "timestamp": ColumnType(
        pa.timestamp("us", tz="UTC"),
        timestamp_text,
        "timestamp in UTC; CSV: ISO 8601 with microseconds and offset, e.g. 2025-03-01T14:05:00.000000+00:00; "
        "Parquet: timestamp[us, UTC]",
    ),
    "probability": ColumnType(
        pa.decimal128(5, 4), _decimal, "exact decimal with 4 places, as stored; Parquet: decimal128(5, 4)"
    ),
    "score": ColumnType(
        pa.decimal128(14, 6), _decimal, "exact decimal with 6 places, as stored; Parquet: decimal128(14, 6)"
    ),
    "fraction": ColumnType(
        pa.decimal128(7, 6), _decimal, "exact decimal with 6 places, as stored; Parquet: decimal128(7, 6)"
    ),
    "float": ColumnType(
        pa.float64(), repr, "floating-point number as stored; CSV: shortest text that reads back to the same double"
    ),
    "probability_list": ColumnType(
        pa.list_(pa.decimal128(5, 4)),
        lambda values: "[" + ",".join(_decimal(v) for v in values) + "]",
        "probability vector of exact decimals; CSV: JSON array, e.g. [0.8000,0.2000]; Parquet: list<decimal128(5, 4)>",
    ),
    "float_list": ColumnType(
        pa.list_(pa.float64()),
        lambda values: json.dumps(values, separators=(",", ":")),
        "probability vector as stored; CSV: JSON array, e.g. [0.35,0.65]; Parquet: list<double>",
    ),
    "boolean": ColumnType(pa.bool_(), lambda value: "true" if value else "false", "true or false"),
    "cdf": ColumnType(
        pa.list_(pa.float64()),
        lambda values: json.dumps(values, separators=(",", ":")),
        "a numeric or date forecast's cumulative distribution, 201 numbers: value k is P(X <= the point k/200 "
        "along the question's scaled range); CSV: JSON array; Parquet: list<double>",
    ),
    "text_list": ColumnType(
        pa.list_(pa.string()),
        lambda values: json.dumps(values, ensure_ascii=False, separators=(",", ":")),
        'list of labels; CSV: JSON array, e.g. ["No","Yes"]; Parquet: list<string>',
    ),
    "json": ColumnType(pa.string(), _json, "JSON object as text (keys sorted) in both formats", to_arrow=_json),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of TYPES
    description: str
    identity: bool = False  # present only in exports for users who may see forecasters' identities

    @property
    def column_type(self) -> ColumnType:
        return TYPES[self.type]


@dataclass(frozen=True)
class RowScope:
    """What one table's rows are drawn from in one export: the argument of a table's ``rows`` function."""

    questions: QuerySet  # the export's questions
    forecaster_key: Callable[[int], str]  # the forecaster's pseudonym, from a user id
    up_to: int | None = None  # append-only tables: the newest id the export includes (set by Export.freeze)
    forecaster_id: int | None = None  # a reader's own data: only this forecaster's rows
    identities: bool = False  # the identity columns (forecaster_username) are included

    @property
    def question_ids(self) -> QuerySet:
        """The export's question ids, as a subquery."""
        return self.questions.order_by().values("pk")

    def of_forecaster(self, queryset: QuerySet) -> QuerySet:
        """``queryset`` narrowed to the forecaster of a reader's own data, if there is one."""
        return queryset if self.forecaster_id is None else queryset.filter(forecaster_id=self.forecaster_id)


@dataclass(frozen=True)
class Table:
    """One table of the exports: its documentation, its columns and where its rows come from."""

    name: str
    description: str
    columns: tuple[Column, ...]
    # The rows as Python values (Decimal, datetime, list, dict, None), one per column of
    # ``columns_for(identities=scope.identities)``, in the table's order.
    rows: Callable[[RowScope], Iterator[tuple]]
    # The model of an append-only table: ``Export.freeze`` records its newest id, and rows added
    # after it (``RowScope.up_to``) are left out, so a long download stays consistent.
    append_only: type[Model] | None = None

    def columns_for(self, *, identities: bool) -> list[Column]:
        return [c for c in self.columns if identities or not c.identity]
