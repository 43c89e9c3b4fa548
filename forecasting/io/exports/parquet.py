"""Parquet encoding of one export table: typed columns, zstd-compressed, one row group per batch.

``pyarrow.parquet.ParquetWriter`` writes into any byte stream, even a non-seekable one (a ZIP
entry, the streaming sink): memory stays bounded by one row group.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .export import Export
from .pg_copy import available as copy_available
from .pg_copy import record_batches as copy_record_batches

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
    schema = arrow_schema(export, table)
    fast = copy_record_batches(export, table, schema) if copy_available(export, table) else None
    with pq.ParquetWriter(_Positioned(fileobj), schema, compression="zstd") as writer:
        if fast is not None:  # PostgreSQL: COPY read by pyarrow, regrouped as the generic path groups rows
            for group in _regroup(fast, schema, PARQUET_ROW_GROUP_ROWS):
                writer.write_table(group, row_group_size=PARQUET_ROW_GROUP_ROWS)
                pa.default_memory_pool().release_unused()  # mimalloc keeps freed blocks otherwise
                yield
            return
        for batch in export.batches(table, PARQUET_ROW_GROUP_ROWS):
            writer.write_batch(record_batch(export, table, batch))
            yield


def _regroup(batches: Iterator[pa.RecordBatch], schema: pa.Schema, size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one shorter) from batches of any length."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            rows = pa.Table.from_batches(pending, schema=schema)
            yield rows.slice(0, size)
            rest = rows.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending, schema=schema)


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
