"""The download streams: CSV encoding, and a ZIP of every table (CSV or Parquet) with its README.

The streams are generators of ``bytes`` meant for a ``StreamingHttpResponse``: they hand out
compressed bytes as soon as a few hundred KiB exist. Rows are encoded in batches of a few
thousand and written into a ZIP over a write-only, non-seekable sink (``zipfile`` then writes
each entry followed by a data descriptor and never seeks back), so memory stays flat whatever
the size of the data.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

from .export import Export
from .parquet import write_parquet
from .pg_copy import available as copy_available
from .pg_copy import csv_chunks as copy_csv_chunks
from .readme import render_readme
from .schema import FORMATS, ExportError

CSV_BATCH_ROWS = 5_000  # rows encoded per write into the ZIP
STREAM_CHUNK_BYTES = 256 * 1024  # bytes handed to the web server at a time


def csv_chunks(export: Export, table: str) -> Iterator[bytes]:
    """The table as CSV (UTF-8, RFC 4180, header row), in chunks of encoded bytes."""
    encoders = [c.column_type.csv for c in export.columns(table)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.name for c in export.columns(table)])
    if copy_available(export, table):  # PostgreSQL: the database writes the rows (COPY)
        fast = copy_csv_chunks(export, table, header=buffer.getvalue().encode())
        if fast is not None:
            yield from fast
            return
    for batch in export.batches(table, CSV_BATCH_ROWS):
        writer.writerows(
            ["" if value is None else encode(value) for value, encode in zip(row, encoders, strict=True)]
            for row in batch
        )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


class _Sink:
    """A write-only, non-seekable byte sink: ``zipfile`` then streams (data descriptors, no seeking)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        data = bytes(data)
        self._parts.append(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here: written bytes are handed on as they come."""

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def _drain(sink: _Sink) -> Iterator[bytes]:
    if sink.size and sink.size >= STREAM_CHUNK_BYTES:
        yield sink.take()


def stream_zip(export: Export, fmt: str = "csv") -> Iterator[bytes]:
    """Every table of the export (CSV or Parquet) and a README.md, as a ZIP, in chunks of bytes."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format “{fmt}”: use csv or parquet.")
    export.freeze()
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in export.tables:
            archive.compresslevel = 6 if fmt == "csv" else 1  # Parquet is compressed already: deflate it lightly
            with archive.open(f"{table}.{fmt}", "w", force_zip64=True) as entry:
                if fmt == "csv":
                    for chunk in csv_chunks(export, table):
                        entry.write(chunk)
                        yield from _drain(sink)
                else:
                    for _ in write_parquet(export, table, entry):
                        yield from _drain(sink)
            yield from _drain(sink)
        archive.compresslevel = 6
        archive.writestr("README.md", render_readme(export, fmt))
    yield sink.take()


def stream_table(export: Export, table: str, fmt: str) -> Iterator[bytes]:
    """One table alone, as a CSV or a Parquet file, in chunks of bytes."""
    export.freeze()
    if fmt == "csv":
        yield from csv_chunks(export, table)
        return
    if fmt != "parquet":
        raise ExportError(f"Unknown format “{fmt}”: use csv or parquet.")
    sink = _Sink()
    for _ in write_parquet(export, table, sink):
        yield from _drain(sink)
    yield sink.take()
