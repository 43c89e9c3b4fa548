"""Shared helpers of the evaluation's tests: benchmark CSV rows written to a file and evaluated."""

import csv
import gzip
import io
from datetime import UTC, datetime, timedelta

from forecasting import evaluation

COLUMNS = ["question_id", "forecaster_id", "made_at", "probability", "outcome", "resolved_at"]
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def day(offset: float) -> str:
    return (EPOCH + timedelta(days=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rows_for(question, outcome, resolved_day, forecasts):
    """forecasts: (forecaster, made_day, probability) triples."""
    return [[question, who, day(made), p, outcome, day(resolved_day)] for who, made, p in forecasts]


def write_csv(path, rows, columns=COLUMNS, compress=False):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def evaluate_rows(tmp_path, rows, **options):
    frame, _ = evaluation.load_forecasts(write_csv(tmp_path / "f.csv", rows))
    return evaluation.evaluate(frame, **options)
