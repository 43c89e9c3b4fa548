"""The PostgreSQL fast path of the two large tables (forecasts, scores): ``COPY (SELECT …) TO STDOUT``.

The generic path (``rows.py``) builds a Python tuple per row and encodes it cell by cell; at a
million forecasts that per-row Python is most of an export's time. Here the database writes
the rows itself (psycopg 3's ``cursor.copy()``): as CSV text already in the export's format for
the CSV files, or as plain CSV that pyarrow's streaming CSV reader turns into typed record
batches for Parquet. Per-row work stays in C (PostgreSQL's executor, libpq, Arrow).

What the generic path does in Python is done in SQL, with the same result byte for byte
(``tests/forecasting/io/test_export_fast_path.py`` compares both on the same data):

- pseudonyms: HMAC-SHA256 computed in Python once per distinct forecaster (not per row), loaded
  into a temporary table and joined;
- CSV text cells: the leading ``'`` against formula injection (``schema.FORMULA_TRIGGERS``) and
  empty text written as an empty cell; numbers are never touched;
- timestamps as ISO 8601 in UTC with microseconds; decimals as stored; probability vectors as
  ``[1 - p, p]`` or the stored option strings; CDFs as Python's ``json.dumps`` writes the floats.

Chosen by ``connection.vendor``: SQLite (the demo) keeps the generic path, as does a table whose
rows function is not forecasting's own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from django.contrib.auth import get_user_model
from django.db import connection

from forecasting.models import CONTINUOUS_TYPES, AggregateSnapshot, Prediction, Question, Score

from .export import Export
from .registry import TABLES
from .rows import aggregates_rows, forecasts_rows, scores_rows
from .schema import FORMULA_TRIGGERS

ENABLED = True  # tests switch it off to compare with the generic path on the same database
COPY_CHUNK_BYTES = 256 * 1024  # COPY rows joined before they are handed on
ARROW_BLOCK_BYTES = 1 << 20  # bytes of CSV pyarrow parses at a time

# Python's isoformat(timespec="microseconds") of a UTC moment, e.g. 2025-03-01T14:05:00.000000+00:00
_ISO = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
_EPOCH_US = "(extract(epoch FROM {}) * 1000000)::bigint"  # exact: extract returns numeric
# Set for the COPY, reset after it:
_SESSION = (
    "extra_float_digits = 1",  # shortest exact float text (PostgreSQL 12+'s default, made sure of), as Python's repr
    "jit = off",  # the formatting expressions look costly to the planner; compiling them took longer than running them
    # A million rows: with 4 MB to sort in, the planner walked the question_id index through the heap
    # (twice as slow) rather than spill a sort; a one-question export still takes the index.
    "work_mem = '64MB'",
)


def _literal(text: str) -> str:
    """A PostgreSQL E'' string literal (the triggers include a tab and a carriage return)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t").replace("\r", "\\r")
    return f"E'{escaped}'"


_TRIGGERS = ", ".join(_literal(c) for c in FORMULA_TRIGGERS)


def _csv_text(expr: str) -> str:
    """``schema.spreadsheet_safe_text`` in SQL; NULLIF so an empty text is an empty cell, as csv.writer writes it."""
    return f"CASE WHEN left({expr}, 1) IN ({_TRIGGERS}) THEN '''' || {expr} ELSE NULLIF({expr}, '') END"


def _float_repr(expr: str) -> str:
    """Python's repr of a double: PostgreSQL's shortest output, plus ".0" on a whole number (1 -> 1.0).

    Both print the shortest text that reads back to the same double, in exponent form below 1e-4.
    (They differ from 1e15 to 1e16, where PostgreSQL already writes an exponent: not a probability.)
    """
    return f"CASE WHEN ({expr})::text ~ '[.eIN]' THEN ({expr})::text ELSE ({expr})::text || '.0' END"


def _json_number(expr: str) -> str:
    """A JSON number as Python's json.dumps writes it after json.loads: a float if it has a point, else an int."""
    return f"CASE WHEN ({expr})::text LIKE '%.%' THEN {_float_repr(f'({expr})::text::float8')} ELSE ({expr})::text END"


def _json_number_list(expr: str) -> str:
    """``json.dumps(list, separators=(",", ":"))`` of a JSON array of numbers, as Python reads it back.

    A JSON number with a point is a Python float (printed by repr), one without an int (as is).
    """
    element = f"CASE WHEN jsonb_typeof(e) = 'number' THEN {_json_number('e')} ELSE e::text END"
    return (
        f"CASE WHEN {expr} IS NOT NULL THEN '[' || array_to_string(ARRAY(SELECT {element} "
        f"FROM jsonb_array_elements({expr}) WITH ORDINALITY AS t(e, i) ORDER BY i), ',') || ']' END"
    )


def _joined_elements(expr: str) -> str:
    """A JSON array's elements as text, each followed by a comma (for ``_list_array``); NULL for NULL."""
    return (
        f"CASE WHEN {expr} IS NOT NULL THEN array_to_string(ARRAY(SELECT e || ',' "
        f"FROM jsonb_array_elements_text({expr}) WITH ORDINALITY AS t(e, i) ORDER BY i), '') END"
    )


@dataclass(frozen=True)
class _Scope:
    """The export's scope for one table, as SQL conditions on integers only (nothing user-typed)."""

    question_ids: list[int]
    up_to: int | None
    forecaster_id: int | None
    identities: bool

    def where(self, alias: str, *, by_forecaster: bool = True) -> str:
        ids = ",".join(str(int(i)) for i in self.question_ids)
        conditions = [f"{alias}.question_id = ANY('{{{ids}}}'::bigint[])"]
        if self.up_to is not None:
            conditions.append(f"{alias}.id <= {int(self.up_to)}")
        if by_forecaster and self.forecaster_id is not None:  # as RowScope.of_forecaster
            conditions.append(f"{alias}.forecaster_id = {int(self.forecaster_id)}")
        return " AND ".join(conditions)


def _sorted_then_formatted(inner: str, order: str, columns: list[str], alias: str) -> str:
    """Sort the plain rows first, format them after: formatting before the sort made PostgreSQL sort wide
    text rows (or walk an index to avoid it), twice as slow. The outer ORDER BY is the subquery's, so
    it costs nothing and states the order."""
    return f"SELECT {', '.join(columns)} FROM ({inner} ORDER BY {order} OFFSET 0) {alias} ORDER BY {order}"


def _forecasts_select(scope: _Scope, keys: str, fmt: str) -> str:
    csv = fmt == "csv"
    vector_csv = (
        "CASE WHEN p.probability IS NOT NULL "
        "THEN '[' || (1 - p.probability)::text || ',' || p.probability::text || ']' "
        "WHEN p.option_probabilities IS NOT NULL THEN '[' || array_to_string(ARRAY(SELECT e::numeric::text "
        "FROM jsonb_array_elements_text(p.option_probabilities) WITH ORDINALITY AS t(e, i) ORDER BY i), ',') || ']' END"
    )
    vector_arrow = (
        "CASE WHEN p.probability IS NOT NULL THEN (1 - p.probability)::text || ',' || p.probability::text || ',' "
        f"ELSE {_joined_elements('p.option_probabilities')} END"
    )
    columns = ["p.id", "p.question_id", "p.key"]
    if scope.identities:
        columns.append(_csv_text("p.username") if csv else "p.username")
    columns += [
        _ISO.format("p.made_at") if csv else _EPOCH_US.format("p.made_at"),
        "p.probability",
        vector_csv if csv else vector_arrow,
        _json_number_list("p.cdf") if csv else _joined_elements("p.cdf"),
    ]
    inner = (
        "SELECT p.id, p.question_id, p.made_at, p.probability, p.option_probabilities, p.cdf, k.key"
        f"{_username(scope)} FROM {Prediction._meta.db_table} p JOIN {keys} k ON k.id = p.forecaster_id"
        f"{_join_user(scope, 'p')} WHERE {scope.where('p')}"
    )
    return _sorted_then_formatted(inner, "p.question_id, p.made_at, p.id", columns, "p")


def _scores_select(scope: _Scope, keys: str, fmt: str) -> str:
    csv = fmt == "csv"
    text = _csv_text if csv else (lambda expr: expr)
    columns = ["s.question_id", "s.key"]
    if scope.identities:
        columns.append(text("s.username"))
    columns += [
        text("s.kind"),
        text("s.method"),
        "s.value",
        "s.coverage",
        "s.prediction_id",
        "s.resolution_id",
        _ISO.format("s.computed_at") if csv else _EPOCH_US.format("s.computed_at"),
    ]
    inner = (
        "SELECT s.question_id, s.forecaster_id, s.kind, s.method, s.value, s.coverage, s.prediction_id, "
        f"s.resolution_id, s.computed_at, k.key{_username(scope)} FROM {Score._meta.db_table} s "
        f"JOIN {keys} k ON k.id = s.forecaster_id{_join_user(scope, 's')} WHERE {scope.where('s')}"
    )
    return _sorted_then_formatted(inner, "s.question_id, s.forecaster_id, s.method, s.kind", columns, "s")


def _flat_json_object(expr: str) -> str:
    """``schema._json`` (keys sorted, no spaces) of a JSON object whose values are scalars.

    Keys sort by code point in Python, by byte in the C collation: the same order for UTF-8. Strings
    are escaped alike by both (quote, backslash, control characters); numbers as ``_json_number_list``.
    """
    value = f"CASE WHEN jsonb_typeof(v) = 'number' THEN {_json_number('v')} ELSE v::text END"
    pairs = (
        f"SELECT string_agg(to_jsonb(k)::text || ':' || {value}, ',' ORDER BY k COLLATE \"C\") "
        f"FROM jsonb_each({expr}) AS t(k, v)"
    )
    return f"CASE WHEN {expr} IS NOT NULL THEN '{{' || coalesce(({pairs}), '') || '}}' END"


def _aggregates_select(scope: _Scope, keys: str, fmt: str) -> str:
    csv = fmt == "csv"
    continuous = ", ".join(f"'{t}'" for t in CONTINUOUS_TYPES)
    binary = Question.Type.BINARY
    vector = f"CASE WHEN a.qtype NOT IN ({continuous}) THEN a.probabilities END"
    cdf = f"CASE WHEN a.qtype IN ({continuous}) THEN a.probabilities END"
    yes = f"CASE WHEN a.qtype = '{binary}' AND jsonb_array_length(a.probabilities) > 0 THEN a.probabilities -> -1 END"
    if csv:
        yes_text = (
            f"CASE WHEN ({yes})::text LIKE '%.%' THEN {_float_repr(f'({yes})::text::float8')} ELSE ({yes})::text END"
        )
        floats = [yes_text, _json_number_list(vector), _float_repr("a.low"), _float_repr("a.high")]
    else:
        floats = [f"({yes})::text", _joined_elements(vector), "a.low", "a.high"]
    columns = [
        "a.id",
        "a.question_id",
        _csv_text("a.method") if csv else "a.method",
        _ISO.format("a.at") if csv else _EPOCH_US.format("a.at"),
        "a.forecasters",
        *floats[:2],
        *floats[2:],
        "a.model_run_id",
        "a.prediction_id",
        _flat_json_object("a.parameters"),
        _json_number_list(cdf) if csv else _joined_elements(cdf),
    ]
    inner = (
        "SELECT a.id, a.question_id, a.method, a.at, a.forecasters, a.probabilities, a.low, a.high, a.model_run_id, "
        f"a.prediction_id, a.parameters, q.question_type AS qtype FROM {AggregateSnapshot._meta.db_table} a "
        f"JOIN {Question._meta.db_table} q ON q.id = a.question_id WHERE {scope.where('a', by_forecaster=False)}"
    )
    return _sorted_then_formatted(inner, "a.question_id, a.method, a.at, a.id", columns, "a")


def _username(scope: _Scope) -> str:
    return ", u.username" if scope.identities else ""


def _join_user(scope: _Scope, alias: str) -> str:
    if not scope.identities:
        return ""
    return f" JOIN {get_user_model()._meta.db_table} u ON u.id = {alias}.forecaster_id"


@dataclass(frozen=True)
class _FastTable:
    db_table: str
    alias: str
    select: Callable[[_Scope, str, str], str]
    # Rows whose stored values the SQL cannot write as the generic path does: the table goes generic.
    unusual: str = "false"
    pseudonyms: bool = True  # rows name a forecaster (forecaster_id): their keys are joined


_FAST: dict[Callable, _FastTable] = {
    forecasts_rows: _FastTable(
        Prediction._meta.db_table,
        "p",
        _forecasts_select,
        # option probabilities are stored as decimal strings; a JSON number would be Decimal(float) in Python
        "p.probability IS NULL AND p.option_probabilities IS NOT NULL AND "
        "jsonb_path_exists(p.option_probabilities, '$[*] ? (@.type() != \"string\")')",
    ),
    scores_rows: _FastTable(Score._meta.db_table, "s", _scores_select),
    aggregates_rows: _FastTable(
        AggregateSnapshot._meta.db_table,
        "a",
        _aggregates_select,
        # probability vectors of numbers, parameters a flat object, finite intervals (Python prints nan, inf)
        "jsonb_typeof(a.probabilities) <> 'array' "
        "OR jsonb_path_exists(a.probabilities, '$[*] ? (@.type() != \"number\")') "
        "OR jsonb_typeof(a.parameters) <> 'object' "
        'OR jsonb_path_exists(a.parameters, \'$.* ? (@.type() == "object" || @.type() == "array")\') '
        "OR a.low IN ('NaN', 'Infinity', '-Infinity') OR a.high IN ('NaN', 'Infinity', '-Infinity') "
        "OR a.method ~ '[\r\n]'",  # a line break in a cell: csv_chunks turns every LF into CRLF
        pseudonyms=False,
    ),
}


def available(export: Export, table: str) -> bool:
    """Whether ``table`` of ``export`` goes through COPY: PostgreSQL, and one of forecasting's large tables."""
    return ENABLED and connection.vendor == "postgresql" and table in export.tables and TABLES[table].rows in _FAST


def _scope(export: Export, table: str) -> _Scope:
    export.freeze()
    return _Scope(
        question_ids=list(export.questions.order_by().values_list("pk", flat=True)),
        up_to=export.marks.get(table),
        forecaster_id=export.forecaster_id,
        identities=export.identities,
    )


class _Keys:
    """A temporary table of (forecaster id, pseudonym) for the forecasters of one table's rows."""

    def __init__(self, spec: _FastTable, scope: _Scope, salt_key: Callable[[int], str]) -> None:
        self._wrapper = connection.cursor()  # closed by drop(), when the stream ends
        self.cursor = cursor = self._wrapper.cursor  # psycopg's own cursor, for copy()
        self.name = f"export_keys_{secrets.token_hex(6)}"
        alias = spec.alias
        if not spec.pseudonyms:
            cursor.execute(
                f"SELECT coalesce(bool_or({spec.unusual}), false) FROM {spec.db_table} {alias} "
                f"WHERE {scope.where(alias, by_forecaster=False)}"
            )
            self.unusual = cursor.fetchone()[0]
            self.name = ""
            return
        cursor.execute(
            f"SELECT {alias}.forecaster_id, bool_or({spec.unusual}) FROM {spec.db_table} {alias} "
            f"WHERE {scope.where(alias)} GROUP BY {alias}.forecaster_id"
        )
        found = cursor.fetchall()
        self.unusual = any(flag for _, flag in found)
        cursor.execute(f"CREATE TEMPORARY TABLE {self.name} (id bigint PRIMARY KEY, key text NOT NULL)")
        with cursor.copy(f"COPY {self.name} (id, key) FROM STDIN") as copy:
            for forecaster_id, _ in found:
                copy.write_row((forecaster_id, salt_key(forecaster_id)))
        cursor.execute(f"ANALYZE {self.name}")

    def drop(self) -> None:
        try:
            if self.name:
                self.cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
        except Exception:  # an abandoned COPY: the temporary table ends with the session
            pass
        self._wrapper.close()


def _copy_out(export: Export, table: str, fmt: str) -> Iterator[bytes] | None:
    """The table's rows as COPY CSV chunks (no header), or None when its data needs the generic path."""
    spec = _FAST[TABLES[table].rows]
    scope = _scope(export, table)
    keys = _Keys(spec, scope, export.forecaster_key)
    if keys.unusual:
        keys.drop()
        return None
    return _stream(spec.select(scope, keys.name, fmt), keys, export, table)


def _stream(select: str, keys: _Keys, export: Export, table: str) -> Iterator[bytes]:
    parts: list[bytes] = []
    size = rows = 0
    try:
        for setting in _SESSION:
            keys.cursor.execute(f"SET {setting}")
        with keys.cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)") as copy:
            for data in copy:  # one row per message
                parts.append(bytes(data))
                size += len(data)
                rows += 1
                if size >= COPY_CHUNK_BYTES:
                    yield b"".join(parts)
                    parts.clear()
                    size = 0
        if parts:
            yield b"".join(parts)
        export.row_counts[table] = rows
    finally:
        try:
            for setting in _SESSION:
                keys.cursor.execute(f"RESET {setting.split()[0]}")
        except Exception:  # see _Keys.drop
            pass
        keys.drop()


def csv_chunks(export: Export, table: str, header: bytes) -> Iterator[bytes] | None:
    """The table as the export's CSV (header, then rows with CRLF endings, as csv.writer), or None."""
    chunks = _copy_out(export, table, "csv")
    if chunks is None:
        return None

    def encoded() -> Iterator[bytes]:
        yield header
        # COPY ends rows with LF, csv.writer with CRLF; no cell of these tables holds a line break
        for chunk in chunks:
            yield chunk.replace(b"\n", b"\r\n")

    return encoded()


def _blocks(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """COPY chunks (whole rows each) joined into blocks of about ``size`` bytes, still whole rows."""
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        parts.append(chunk)
        total += len(chunk)
        if total >= size:
            yield b"".join(parts)
            parts, total = [], 0
    if parts:
        yield b"".join(parts)


def _list_array(column: pa.Array, field: pa.Field) -> pa.Array:
    """A list column from text "v1,v2,…," per row: every element parsed at once by pyarrow's CSV reader.

    No pyarrow.compute here: its kernels cost ~30 MB of memory when first used.
    """
    validity, offsets_buffer, data_buffer = column.buffers()
    n = len(column)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[column.offset : column.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    commas = np.flatnonzero(data[: offsets[-1]] == ord(","))  # one after each element
    list_offsets = np.searchsorted(commas, offsets).astype(np.int32)
    list_offsets -= list_offsets[0]
    text = data[offsets[0] : offsets[-1]].tobytes().replace(b",", b"\n")
    if text:
        values = pacsv.read_csv(
            pa.py_buffer(text),
            read_options=pacsv.ReadOptions(column_names=["v"], block_size=len(text) + 1, use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types={"v": field.type.value_type}),
        ).column(0)
        values = values.chunk(0) if values.num_chunks == 1 else pa.concat_arrays(values.chunks)
    else:
        values = pa.nulls(0, field.type.value_type)  # not pa.array, which imports pandas (~40 MB)
    if validity is not None and column.offset:
        raise ValueError("a sliced column")  # read_csv's batches start at 0; the bitmap is used as is
    return pa.Array.from_buffers(field.type, n, [validity, pa.py_buffer(list_offsets)], children=[values])


def _to_arrow(column: pa.Array, field: pa.Field) -> pa.Array:
    """A CSV column read by pyarrow as its export type: timestamps from epoch µs, lists from joined text."""
    if pa.types.is_timestamp(field.type):
        return column.view(field.type)  # int64 µs since the epoch: the same bytes
    if pa.types.is_list(field.type):
        return _list_array(column, field)
    return column


def record_batches(export: Export, table: str, schema: pa.Schema) -> Iterator[pa.RecordBatch] | None:
    """The table's rows as record batches of the export's Parquet schema, or None (generic path)."""
    chunks = _copy_out(export, table, "parquet")
    if chunks is None:
        return None
    # read as: lists as text, timestamps as int64 (epoch µs), everything else as its own type
    read_types = {
        f.name: pa.string() if pa.types.is_list(f.type) else pa.int64() if pa.types.is_timestamp(f.type) else f.type
        for f in schema
    }
    # block_size above a block's size (ARROW_BLOCK_BYTES and one COPY chunk): each block parses as one
    read_options = pacsv.ReadOptions(column_names=schema.names, block_size=2 * ARROW_BLOCK_BYTES, use_threads=False)
    convert_options = pacsv.ConvertOptions(
        column_types=read_types,
        strings_can_be_null=True,  # COPY writes NULL as an empty cell …
        quoted_strings_can_be_null=False,  # … and an empty text as ""
    )

    def batches() -> Iterator[pa.RecordBatch]:
        # Block by block in this thread (read_csv on a buffer), not open_csv on a Python stream: that
        # reads the stream from a pyarrow thread, whose Python allocations cost tens of MB of arenas.
        for block in _blocks(chunks, ARROW_BLOCK_BYTES):
            rows = pacsv.read_csv(pa.py_buffer(block), read_options=read_options, convert_options=convert_options)
            for batch in rows.to_batches():
                arrays = [_to_arrow(batch.column(i), field) for i, field in enumerate(schema)]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return batches()


__all__ = ["available", "csv_chunks", "record_batches"]
