"""One download as a streamed HTTP response, for the web pages and the API alike."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from .csv_zip import stream_table, stream_zip
from .export import Export

CONTENT_TYPES = {
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def streaming_download(export: Export, fmt: str, table: str | None) -> StreamingHttpResponse:
    """The export, frozen now (rows written later are left out), as a ZIP of every table or one table."""
    export.freeze()
    if table is None:
        filename = export.filename("zip", "parquet" if fmt == "parquet" else None)
        chunks, content_type = stream_zip(export, fmt), CONTENT_TYPES["zip"]
    else:
        chunks, filename, content_type = (
            stream_table(export, table, fmt),
            export.filename(fmt, table),
            CONTENT_TYPES[fmt],
        )
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Accel-Buffering"] = "no"  # a proxy passes the chunks on instead of buffering the download
    return response
