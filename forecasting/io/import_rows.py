"""Reading and checking a flat forecast file, without touching the database.

The formats and the checks are described in ``forecasting.io.imports``, the import service that
writes what passes them. ``read_rows`` reads the file into its format (``BINARY``, or ``NUMERIC``
when the header has a ``cdf`` column) and ``(line number, {column: value})`` pairs;
``validate_rows`` parses yes/no rows into ``ForecastRow`` values and ``Rejection`` reasons
(``import_numeric.validate_numeric_rows`` does the same for numeric and date rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from forecasting.evaluation import numeric as numeric_format
from forecasting.models import MAX_PROBABILITY, MIN_PROBABILITY, Question

REQUIRED_COLUMNS = ("question_id", "forecaster_id", "made_at", "probability", "outcome", "resolved_at")
# The numeric flat format, the one ``manage.py evaluate_aggregators`` reads (docs/continuous.md).
NUMERIC_REQUIRED_COLUMNS = numeric_format.REQUIRED_COLUMNS
NUMERIC_OPTIONAL_COLUMNS = ("zero_point", "question_type", "closes_at")
BINARY, NUMERIC = "binary", "numeric"  # the file's format, from its header
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


def read_rows(path: str | Path) -> tuple[str, list[RawRow]]:
    """The file's format (``NUMERIC`` when the header names a ``cdf`` column, else ``BINARY``) and its
    rows as ``(line number, {column: value})`` pairs; the header is line 1. An optional column the
    file lacks is absent from the dicts.

    Raises ``ImportFileError`` when the file cannot be read or lacks a required column.
    """
    path = Path(path)
    rows: list[RawRow] = []
    line = 0
    kind = BINARY
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ImportFileError(f"{path.name} is empty: expected a header row.")
            names = [name.strip() for name in header]
            kind = NUMERIC if "cdf" in names else BINARY
            required = NUMERIC_REQUIRED_COLUMNS if kind == NUMERIC else REQUIRED_COLUMNS
            missing = [column for column in required if column not in names]
            if missing:
                raise ImportFileError(
                    f"{path.name} lacks the required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (found: {', '.join(names) or 'none'})"
                    + (" for the numeric format (it has a cdf column)." if kind == NUMERIC else ".")
                )
            optional = NUMERIC_OPTIONAL_COLUMNS if kind == NUMERIC else ()
            positions = {column: names.index(column) for column in (*required, *optional) if column in names}
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
    return kind, rows


# --- validation (no database access) ----------------------------------------------------------------


def parse_datetime(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def common_field_errors(text: Mapping[str, str], max_forecaster_id_length: int) -> tuple[list[str], dict]:
    """Check the columns both formats share (ids, ``made_at``, ``resolved_at``): (problems, parsed values)."""
    errors: list[str] = []
    values: dict = {}
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
    for column in ("made_at", "resolved_at"):
        try:
            values[column] = parse_datetime(text[column])
        except (ValueError, OverflowError):
            errors.append(
                f"{column} “{text[column]}” is not an ISO 8601 date-time" if text[column] else f"empty {column}"
            )
    return errors, values


def _field_errors(raw: Mapping[str, str | None], max_forecaster_id_length: int) -> tuple[list[str], dict]:
    """Check one row's fields on their own: (problems, parsed values)."""
    text = {column: (raw.get(column) or "").strip() for column in REQUIRED_COLUMNS}
    errors, values = common_field_errors(text, max_forecaster_id_length)

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
    return errors, values


def screen_rows(
    rows: Iterable[RawRow],
    parse: Callable[[int, Mapping[str, str | None]], tuple[list[str], object]],
    rules: Iterable[Callable[[object, object | None], str | None]],
) -> tuple[list, list[Rejection]]:
    """The row checks both formats share: ``parse`` gives a row's field errors (or the parsed row), a
    second row for the same (question, forecaster, made_at) is a duplicate, and each of ``rules``
    (``rule(row, first row of its question or None)``) may give a reason to reject it. Rows are
    ``(line number, {column: value})`` pairs as ``read_rows`` returns them; the accepted rows and the
    rejected ones (line and reason) come back in file order."""
    accepted: list = []
    rejected: list[Rejection] = []
    first_of_question: dict[str, object] = {}
    first_of_key: dict[tuple[str, str, dt.datetime], int] = {}
    rules = list(rules)
    for line, raw in rows:
        errors, row = parse(line, raw)
        if errors:
            rejected.append(Rejection(line, "; ".join(errors)))
            continue
        key = (row.question_id, row.forecaster_id, row.made_at)
        if key in first_of_key:
            reason = f"duplicate of line {first_of_key[key]} (same question, forecaster and made_at)"
        else:
            first = first_of_question.get(row.question_id)
            reason = next((r for r in (rule(row, first) for rule in rules) if r is not None), None)
        if reason is not None:
            rejected.append(Rejection(line, reason))
            continue
        first_of_question.setdefault(row.question_id, row)
        first_of_key[key] = line
        accepted.append(row)
    return accepted, rejected


def made_after_resolution(row: ForecastRow, first: ForecastRow | None) -> str | None:
    """A forecast made after its question resolved (the rule of both formats; ``first`` is unused)."""
    if row.made_at > row.resolved_at:
        return (
            f"made after the question resolved (made_at {iso_utc(row.made_at)}, resolved_at {iso_utc(row.resolved_at)})"
        )
    return None


def _conflicting_outcome(row: ForecastRow, first: ForecastRow | None) -> str | None:
    if first is not None and first.outcome != row.outcome:
        return (
            f"outcome {row.outcome} conflicts with line {first.line} "
            f"(outcome {first.outcome} for question {row.question_id})"
        )
    if first is not None and first.resolved_at != row.resolved_at:
        return (
            f"resolved_at {iso_utc(row.resolved_at)} conflicts with line {first.line} "
            f"(resolved_at {iso_utc(first.resolved_at)} for question {row.question_id})"
        )
    return None


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

    def parse(line: int, raw: Mapping[str, str | None]) -> tuple[list[str], ForecastRow | None]:
        errors, values = _field_errors(raw, max_forecaster_id_length)
        return errors, None if errors else ForecastRow(line=line, **values)

    return screen_rows(rows, parse, [_conflicting_outcome, made_after_resolution])


def iso_utc(moment: dt.datetime) -> str:
    """A moment as ISO 8601 in UTC with a ``Z``, as the reasons and resolution criteria write it."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
