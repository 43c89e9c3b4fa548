"""Reading and checking a flat forecast file, without touching the database.

The format and the checks are described in ``forecasting.io.imports``, the import service that
writes what passes them. ``read_rows`` reads the file into ``(line number, {column: value})``
pairs; ``validate_rows`` parses them into ``ForecastRow`` values and ``Rejection`` reasons.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from forecasting.models import MAX_PROBABILITY, MIN_PROBABILITY, Question

REQUIRED_COLUMNS = ("question_id", "forecaster_id", "made_at", "probability", "outcome", "resolved_at")
PROBABILITY_QUANTUM = Decimal("0.0001")
MAX_EXTERNAL_ID_LENGTH = Question._meta.get_field("external_id").max_length
MAX_USERNAME_LENGTH = get_user_model()._meta.get_field("username").max_length
# Django's own username rule (letters, digits and @ . + - _): an imported forecaster's id becomes part
# of a username, which the public pages put in URLs, so a "/" or a space must never get that far.
USERNAME_VALIDATOR = get_user_model().username_validator
OUTCOMES = {"1": 1, "1.0": 1, "0": 0, "0.0": 0}
GZIP_MAGIC = b"\x1f\x8b"

RawRow = tuple[int, Mapping[str, str | None]]


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, not CSV, a required column missing...)."""


@dataclass(frozen=True, slots=True)
class ForecastRow:
    """One accepted row, parsed."""

    line: int
    question_id: str
    forecaster_id: str  # as in the file; valid in a username (``imports.imported_username`` namespaces it)
    made_at: dt.datetime  # aware, UTC
    probability: Decimal  # clipped to [0.01, 0.99], 4 decimals
    outcome: int  # 1 = YES, 0 = NO
    resolved_at: dt.datetime  # aware, UTC
    clipped: bool = False  # the file's probability lay outside [0.01, 0.99]


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


# --- reading the file ----------------------------------------------------------------------------


def _open_text(path: Path):
    with path.open("rb") as raw:
        magic = raw.read(2)
    if path.suffix == ".gz" or magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def read_rows(path: str | Path) -> list[RawRow]:
    """Read the file into ``(line number, {column: value})`` pairs; the header is line 1.

    Raises ``ImportFileError`` when the file cannot be read or lacks a required column.
    """
    path = Path(path)
    rows: list[RawRow] = []
    line = 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ImportFileError(f"{path.name} is empty: expected a header row.")
            names = [name.strip() for name in header]
            missing = [column for column in REQUIRED_COLUMNS if column not in names]
            if missing:
                raise ImportFileError(
                    f"{path.name} lacks the required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (found: {', '.join(names) or 'none'})."
                )
            positions = {column: names.index(column) for column in REQUIRED_COLUMNS}
            line = reader.line_num
            for record in reader:
                start, line = line + 1, reader.line_num
                if not record:  # a blank line
                    continue
                rows.append((start, {col: record[i] if i < len(record) else None for col, i in positions.items()}))
    except FileNotFoundError:
        raise ImportFileError(f"No such file: {path}") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a directory, not a file.") from None
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ImportFileError(f"Cannot read {path.name}: {error}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{path.name} is not UTF-8 text.") from None
    except csv.Error as error:
        raise ImportFileError(f"{path.name} is not valid CSV near line {line + 1}: {error}") from None
    return rows


# --- validation (no database access) ----------------------------------------------------------------


def _parse_datetime(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _field_errors(raw: Mapping[str, str | None], max_forecaster_id_length: int) -> tuple[list[str], dict]:
    """Check one row's fields on their own: (problems, parsed values)."""
    errors: list[str] = []
    values: dict = {}
    text = {column: (raw.get(column) or "").strip() for column in REQUIRED_COLUMNS}

    if not text["question_id"]:
        errors.append("empty question_id")
    elif len(text["question_id"]) > MAX_EXTERNAL_ID_LENGTH:
        errors.append(f"question_id longer than {MAX_EXTERNAL_ID_LENGTH} characters")
    values["question_id"] = text["question_id"]
    forecaster_id = text["forecaster_id"]
    if not forecaster_id:
        errors.append("empty forecaster_id")
    else:
        try:
            USERNAME_VALIDATOR(forecaster_id)
        except ValidationError:
            errors.append(f"forecaster_id “{forecaster_id}” may contain only letters, digits and @ . + - _")
        if len(forecaster_id) > max_forecaster_id_length:
            # never cut: two long ids sharing a prefix would become one forecaster
            errors.append(f"forecaster_id longer than {max_forecaster_id_length} characters")
    values["forecaster_id"] = forecaster_id

    probability = text["probability"]
    try:
        number = Decimal(probability)
    except InvalidOperation:
        errors.append(f"probability “{probability}” is not a number" if probability else "empty probability")
    else:
        if number.is_nan():
            errors.append("probability is NaN")
        elif number.is_infinite():
            errors.append(f"probability “{probability}” is infinite")
        elif not 0 <= number <= 1:
            errors.append(f"probability {probability} is outside [0, 1]")
        else:
            clipped = min(max(number, MIN_PROBABILITY), MAX_PROBABILITY)
            values["probability"] = clipped.quantize(PROBABILITY_QUANTUM, rounding=ROUND_HALF_EVEN)
            values["clipped"] = clipped != number

    outcome = text["outcome"]
    if outcome in OUTCOMES:
        values["outcome"] = OUTCOMES[outcome]
    else:
        errors.append(f"outcome “{outcome}” is not 0 or 1" if outcome else "empty outcome")

    for column in ("made_at", "resolved_at"):
        try:
            values[column] = _parse_datetime(text[column])
        except (ValueError, OverflowError):
            errors.append(
                f"{column} “{text[column]}” is not an ISO 8601 date-time" if text[column] else f"empty {column}"
            )
    return errors, values


def validate_rows(
    rows: Iterable[RawRow], *, max_forecaster_id_length: int = MAX_USERNAME_LENGTH
) -> tuple[list[ForecastRow], list[Rejection]]:
    """Check rows of the flat format without touching the database.

    ``rows`` are ``(line number, {column: value})`` pairs as ``read_rows`` returns them;
    ``max_forecaster_id_length`` leaves room for the namespace the import adds to the id. Returns
    the accepted rows (parsed) and the rejected ones (line and reason), each in file order.
    The first accepted row of a question fixes its outcome and resolution time; the first
    accepted row for a (question, forecaster, made_at) is the one kept.
    """
    accepted: list[ForecastRow] = []
    rejected: list[Rejection] = []
    first_of_question: dict[str, ForecastRow] = {}
    first_of_key: dict[tuple[str, str, dt.datetime], int] = {}

    for line, raw in rows:
        errors, values = _field_errors(raw, max_forecaster_id_length)
        if errors:
            rejected.append(Rejection(line, "; ".join(errors)))
            continue
        row = ForecastRow(line=line, **values)
        key = (row.question_id, row.forecaster_id, row.made_at)
        if key in first_of_key:
            rejected.append(
                Rejection(line, f"duplicate of line {first_of_key[key]} (same question, forecaster and made_at)")
            )
            continue
        first = first_of_question.get(row.question_id)
        if first is not None and first.outcome != row.outcome:
            rejected.append(
                Rejection(
                    line,
                    f"outcome {row.outcome} conflicts with line {first.line} "
                    f"(outcome {first.outcome} for question {row.question_id})",
                )
            )
            continue
        if first is not None and first.resolved_at != row.resolved_at:
            rejected.append(
                Rejection(
                    line,
                    f"resolved_at {iso_utc(row.resolved_at)} conflicts with line {first.line} "
                    f"(resolved_at {iso_utc(first.resolved_at)} for question {row.question_id})",
                )
            )
            continue
        if row.made_at > row.resolved_at:
            rejected.append(
                Rejection(
                    line,
                    f"made after the question resolved (made_at {iso_utc(row.made_at)}, "
                    f"resolved_at {iso_utc(row.resolved_at)})",
                )
            )
            continue
        first_of_question.setdefault(row.question_id, row)
        first_of_key[key] = line
        accepted.append(row)
    return accepted, rejected


def iso_utc(moment: dt.datetime) -> str:
    """A moment as ISO 8601 in UTC with a ``Z``, as the reasons and resolution criteria write it."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
