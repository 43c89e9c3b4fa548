"""Data exports: how the newsroom's forecasts leave the system, complete, documented and exact.

Use it as ``from forecasting.io import exports`` and ``exports.<name>``; the modules:

- ``schema``: column types, columns and the table spec (``Table``), declared once for the code,
  the schema and the documentation;
- ``registry``: the tables an export contains, an extension point (``register_table``) where
  forecasting registers its own (``tables``: questions, forecasts, aggregates, scores, read by
  ``rows``) and the market its price history (``market/exports.py``);
- ``access``: who may download what, and the forecasters' pseudonyms;
- ``filters``: which questions, format and table a request asks for;
- ``export``: what one download contains (``Export``) and the downloads there are;
- ``csv_zip`` and ``parquet``: the encodings and the streamed ZIP; ``readme``: the ZIP's README.md.

The streaming knobs (``csv_zip.CSV_BATCH_ROWS``, ``csv_zip.STREAM_CHUNK_BYTES``,
``parquet.PARQUET_ROW_GROUP_ROWS``) live in the modules that read them, and are not re-exported.
"""

from .access import (
    ANALYST_PERMISSION,
    IDENTITIES_PERMISSION,
    forecaster_key,
    may_export,
    may_see_identities,
)
from .csv_zip import csv_chunks, stream_table, stream_zip
from .export import (
    Export,
    export_article,
    export_everything,
    export_own_data,
    export_question,
    exportable_questions,
)
from .filters import EXPORTABLE_STATUSES, QuestionFilters, parse_filters, parse_format
from .parquet import record_batch, write_parquet
from .readme import SCORE_DOCS, SCORE_METHOD_DOCS, method_descriptions, render_readme
from .registry import ANALYST_TABLES, COLUMNS, TABLES, analyst_tables, register_table
from .schema import DB_CHUNK_ROWS, FORMATS, TYPES, Column, ColumnType, ExportError, RowScope, Table
from .tables import OWN_DATA_TABLES

__all__ = [
    "ANALYST_PERMISSION",
    "ANALYST_TABLES",
    "COLUMNS",
    "DB_CHUNK_ROWS",
    "EXPORTABLE_STATUSES",
    "FORMATS",
    "IDENTITIES_PERMISSION",
    "OWN_DATA_TABLES",
    "SCORE_DOCS",
    "SCORE_METHOD_DOCS",
    "TABLES",
    "TYPES",
    "Column",
    "ColumnType",
    "Export",
    "ExportError",
    "QuestionFilters",
    "RowScope",
    "Table",
    "analyst_tables",
    "csv_chunks",
    "export_article",
    "export_everything",
    "export_own_data",
    "export_question",
    "exportable_questions",
    "forecaster_key",
    "may_export",
    "may_see_identities",
    "method_descriptions",
    "parse_filters",
    "parse_format",
    "record_batch",
    "register_table",
    "render_readme",
    "stream_table",
    "stream_zip",
    "write_parquet",
]
