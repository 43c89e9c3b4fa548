"""Parquet encoding of one export table: typed columns, zstd-compressed, one row group per batch.

``pyarrow.parquet.ParquetWriter`` writes into any byte stream, even a non-seekable one (a ZIP
entry, the streaming sink): memory stays bounded by one row group.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .export import Export

PARQUET_ROW_GROUP_ROWS = 20_000  # rows per Parquet row group: bounds the memory of one batch


def arrow_schema(export: Export, table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.column_type.arrow) for c in export.columns(table)])


def record_batch(export: Export, table: str, rows: list[tuple]) -> pa.RecordBatch:
    arrays = []
    for c, values in zip(export.columns(table), zip(*rows, strict=True), strict=True):
        convert = c.column_type.to_arrow
        if convert is not None:
            values = [None if v is None else convert(v) for v in values]
        arrays.append(pa.array(values, type=c.column_type.arrow))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(export, table))


def write_parquet(export: Export, table: str, fileobj) -> Iterator[None]:
    """Write the table as Parquet into ``fileobj``, one row group per batch; yields after each."""
    with pq.ParquetWriter(_Positioned(fileobj), arrow_schema(export, table), compression="zstd") as writer:
        for batch in export.batches(table, PARQUET_ROW_GROUP_ROWS):
            writer.write_batch(record_batch(export, table, batch))
            yield


class _Positioned:
    """Counts the bytes written, for writers (pyarrow) that ask a non-seekable stream where they are."""

    def __init__(self, fileobj) -> None:
        self._fileobj = fileobj
        self._position = 0
        self.closed = False

    def write(self, data) -> int:
        self._fileobj.write(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing is buffered here: written bytes are handed on as they come."""

    def close(self) -> None:  # the owner of the underlying stream closes it
        self.closed = True
