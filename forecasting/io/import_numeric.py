"""Reading and checking the rows of a numeric flat file (numeric and date questions), without the database.

The format and the checks are described in ``forecasting.io.imports``; it is the format
``manage.py evaluate_aggregators`` reads (docs/continuous.md, ``forecasting.evaluation.numeric``), with
its cleaning rules turned into reasons for rejecting a row. ``validate_numeric_rows`` parses the rows
``import_rows.read_rows`` returns into ``NumericRow`` values and ``Rejection`` reasons;
``database_conflict`` is the check of a row against a question the database already holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from forecasting.continuous import CDF_POINTS, CdfError, Scale, standardise, validate_cdf
from forecasting.continuous.grid import ABOVE, BELOW, DECREASE_TOLERANCE
from forecasting.models import Question, Resolution
from forecasting.services.predictions import CDF_DECIMALS

from .import_rows import (
    MAX_USERNAME_LENGTH,
    NUMERIC_OPTIONAL_COLUMNS,
    NUMERIC_REQUIRED_COLUMNS,
    RawRow,
    Rejection,
    common_field_errors,
    iso_utc,
    made_after_resolution,
    parse_datetime,
    screen_rows,
)

QUESTION_TYPES = {"numeric": Question.Type.NUMERIC, "date": Question.Type.DATE}
FLAGS = {"true": True, "1": True, "yes": True, "t": True, "false": False, "0": False, "no": False, "f": False}
SCALE_FIELDS = ("range_min", "range_max", "open_lower_bound", "open_upper_bound", "zero_point")
# What every row of one question must agree on, in the order a conflict is reported.
QUESTION_FIELDS = ("question_type", *SCALE_FIELDS, "outcome", "resolved_at", "closes_at")
DATE_VALUED = ("range_min", "range_max", "zero_point", "outcome")  # epoch seconds on a date question
Outcome = Resolution.Outcome


@dataclass(frozen=True, slots=True)
class NumericRow:
    """One accepted row of a numeric or date question, parsed."""

    line: int
    question_id: str
    forecaster_id: str  # as in the file; valid in a username (``imports.imported_username`` namespaces it)
    made_at: dt.datetime  # aware, UTC
    resolved_at: dt.datetime  # aware, UTC
    closes_at: dt.datetime | None  # aware, UTC; None when the file does not give it
    question_type: str  # Question.Type.NUMERIC or Question.Type.DATE
    range_min: float  # dates: epoch seconds
    range_max: float
    open_lower_bound: bool
    open_upper_bound: bool
    zero_point: float | None  # None: a linear scale
    outcome: float | str  # the file's outcome: a number (dates: epoch seconds), BELOW or ABOVE
    cdf: tuple[float, ...]  # 201 values, valid on the question's scale, rounded as the site stores them
    standardised: bool = False  # the file's CDF broke the site's rules for a forecast and was standardised

    @property
    def scale(self) -> Scale:
        return Scale(
            self.range_min,
            self.range_max,
            open_lower=self.open_lower_bound,
            open_upper=self.open_upper_bound,
            zero_point=self.zero_point,
        )

    def question_fields(self) -> dict:
        """The question's type and range, as ``Question`` fields."""
        return {"question_type": self.question_type, **{name: getattr(self, name) for name in SCALE_FIELDS}}

    def resolution_fields(self) -> dict:
        """The resolution as the site stores it (``services.questions._continuous_outcome``): a value inside
        the range, or "below" / "above" with no value for an outcome beyond an (open) bound."""
        if self.outcome == BELOW or (not isinstance(self.outcome, str) and self.outcome < self.range_min):
            return {"outcome": Outcome.BELOW, "value": None}
        if self.outcome == ABOVE or (not isinstance(self.outcome, str) and self.outcome > self.range_max):
            return {"outcome": Outcome.ABOVE, "value": None}
        return {"outcome": Outcome.VALUE, "value": float(self.outcome)}

    def show(self, name: str) -> str:
        """A field as the reasons write it: dates in ISO 8601, numbers with up to 15 digits."""
        value = getattr(self, name)
        if value is None:
            return "empty"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dt.datetime):
            return iso_utc(value)
        if isinstance(value, str):
            return value
        if self.question_type == Question.Type.DATE and name in DATE_VALUED:
            return iso_utc(dt.datetime.fromtimestamp(value, tz=dt.UTC))
        return f"{value:.15g}"

    def describe_outcome(self) -> str:
        kind = self.resolution_fields()["outcome"]
        if isinstance(self.outcome, str):
            return kind.label.lower()
        return self.show("outcome") if kind == Outcome.VALUE else f"{self.show('outcome')} ({kind.label.lower()})"

    def describe_range(self) -> str:
        bounds = "open" if self.open_lower_bound else "closed", "open" if self.open_upper_bound else "closed"
        scale = "linear" if self.zero_point is None else f"log, zero point {self.show('zero_point')}"
        return f"{self.show('range_min')} to {self.show('range_max')}, {bounds[0]}/{bounds[1]} bounds, {scale}"


# --- one row's fields ------------------------------------------------------------------------------------


def _number(text: str, dates: bool) -> float | None:
    """A finite number, or with ``dates`` an ISO 8601 date(-time) as epoch seconds; None when neither."""
    try:
        value = float(text)
    except ValueError:
        if not dates:
            return None
        try:
            value = parse_datetime(text).timestamp()
        except (ValueError, OverflowError):
            return None
    return value if math.isfinite(value) else None


def _is_date(text: str) -> bool:
    return (
        bool(text) and text not in (BELOW, ABOVE) and _number(text, False) is None and _number(text, True) is not None
    )


def _cdf(text: str, scale: Scale | None) -> tuple[tuple[float, ...] | None, bool, str | None]:
    """``(cdf as stored, standardised, problem)``: the CDF valid on ``scale`` (unchecked without a scale)."""
    if not text:
        return None, False, "empty cdf"
    try:
        values = np.asarray(json.loads(text), dtype=float)
    except (TypeError, ValueError):
        return None, False, "cdf is not a JSON list of numbers"
    if values.ndim != 1:
        return None, False, "cdf is not a JSON list of numbers"
    if len(values) != CDF_POINTS:
        return None, False, f"cdf has {len(values)} values, not {CDF_POINTS}"
    if not np.all(np.isfinite(values)):
        return None, False, "cdf holds a value that is not a finite number"
    if values.min() < -DECREASE_TOLERANCE or values.max() > 1 + DECREASE_TOLERANCE:
        return None, False, "cdf has values outside [0, 1]"
    decreasing = np.diff(values) < -DECREASE_TOLERANCE
    if np.any(decreasing):
        return None, False, f"cdf decreases after grid point {int(np.argmax(decreasing))}: not a CDF"
    if scale is None:
        return None, False, None
    values = np.maximum.accumulate(np.clip(values, 0.0, 1.0))
    standardised = False
    try:
        checked = validate_cdf(values, scale)
    except CdfError:  # a historical forecast may break the site's stricter rules for submitting one
        standardised = True
        try:
            checked = validate_cdf(standardise(values, scale), scale)
        except CdfError as error:
            return None, False, f"cdf cannot be made a valid forecast on this range: {error}"
    return tuple(round(float(x), CDF_DECIMALS) for x in checked), standardised, None


def _field_errors(raw: Mapping[str, str | None], max_forecaster_id_length: int) -> tuple[list[str], dict]:
    """Check one row's fields on their own: (problems, parsed values)."""
    text = {
        column: (raw.get(column) or "").strip() for column in (*NUMERIC_REQUIRED_COLUMNS, *NUMERIC_OPTIONAL_COLUMNS)
    }
    errors, values = common_field_errors(text, max_forecaster_id_length)

    kind = text["question_type"].lower()
    if kind in QUESTION_TYPES:
        values["question_type"] = QUESTION_TYPES[kind]
    elif kind:
        errors.append(f"question_type “{text['question_type']}” is not numeric or date")
    else:  # as the evaluation reads it: a value that is not a number but a date makes a date question
        dated = any(_is_date(text[column]) for column in DATE_VALUED)
        values["question_type"] = Question.Type.DATE if dated else Question.Type.NUMERIC
    dates = values.get("question_type") != Question.Type.NUMERIC
    noun = "a number or an ISO date" if dates else "a number"

    scale_ok = "question_type" in values
    for column in ("range_min", "range_max", "zero_point"):
        values[column] = _number(text[column], dates) if text[column] else None
        if values[column] is None and (text[column] or column != "zero_point"):
            errors.append(f"{column} “{text[column]}” is not {noun}" if text[column] else f"empty {column}")
            scale_ok = False
    for column in ("open_lower_bound", "open_upper_bound"):
        values[column] = FLAGS.get(text[column].lower())
        if values[column] is None:
            errors.append(f"{column} “{text[column]}” is not true or false" if text[column] else f"empty {column}")
            scale_ok = False
    scale = None
    if scale_ok:
        try:
            scale = Scale(
                values["range_min"],
                values["range_max"],
                open_lower=values["open_lower_bound"],
                open_upper=values["open_upper_bound"],
                zero_point=values["zero_point"],
            )
        except ValueError as error:
            errors.append(f"the range is not valid: {error}")

    outcome = text["outcome"]
    values["outcome"] = outcome if outcome in (BELOW, ABOVE) else _number(outcome, dates)
    if values["outcome"] is None:
        errors.append(f"outcome “{outcome}” is not {noun}, {BELOW} or {ABOVE}" if outcome else "empty outcome")
    elif scale is not None:
        number = values["outcome"]
        if (number == BELOW or (not isinstance(number, str) and number < scale.range_min)) and not scale.open_lower:
            errors.append(
                f"outcome {outcome} lies below the range (range_min {text['range_min']}), whose lower bound is closed"
            )
        if (number == ABOVE or (not isinstance(number, str) and number > scale.range_max)) and not scale.open_upper:
            errors.append(
                f"outcome {outcome} lies above the range (range_max {text['range_max']}), whose upper bound is closed"
            )

    values["closes_at"] = None
    if text["closes_at"]:
        try:
            values["closes_at"] = parse_datetime(text["closes_at"])
        except (ValueError, OverflowError):
            errors.append(f"closes_at “{text['closes_at']}” is not an ISO 8601 date-time")

    values["cdf"], values["standardised"], problem = _cdf(text["cdf"], scale)
    if problem:
        errors.append(problem)
    return errors, values


# --- the rows of a file ----------------------------------------------------------------------------------


def validate_numeric_rows(
    rows: Iterable[RawRow], *, max_forecaster_id_length: int = MAX_USERNAME_LENGTH
) -> tuple[list[NumericRow], list[Rejection]]:
    """Check rows of the numeric flat format without touching the database.

    As ``import_rows.validate_rows``: accepted rows (parsed) and rejected ones (line and reason), each in
    file order. The first accepted row of a question fixes its type, range, bounds, zero point, outcome,
    resolution and close times; the first accepted row for a (question, forecaster, made_at) is kept.
    """

    def parse(line: int, raw: Mapping[str, str | None]) -> tuple[list[str], NumericRow | None]:
        errors, values = _field_errors(raw, max_forecaster_id_length)
        return errors, None if errors else NumericRow(line=line, **values)

    return screen_rows(rows, parse, [_conflicting_question, made_after_resolution, _made_after_close])


def _conflicting_question(row: NumericRow, first: NumericRow | None) -> str | None:
    differing = [] if first is None else [f for f in QUESTION_FIELDS if getattr(first, f) != getattr(row, f)]
    if not differing:
        return None
    return (
        "; ".join(f"{name} {row.show(name)} conflicts with line {first.line}" for name in differing)
        + f" ({', '.join(f'{name} {first.show(name)}' for name in differing)} for question {row.question_id})"
    )


def _made_after_close(row: NumericRow, first: NumericRow | None) -> str | None:
    if row.closes_at is not None and row.made_at > row.closes_at:
        return f"made after the question closed (made_at {iso_utc(row.made_at)}, closes_at {iso_utc(row.closes_at)})"
    return None


def database_conflict(row: NumericRow, question: Question, resolution: Resolution | None) -> str | None:
    """Why a row cannot join a question the database already holds (None when it can): another type or
    range there, another resolution (or none), or a forecast made after it resolved or closed there."""
    if question.question_type != row.question_type:
        return (
            f"question {row.question_id} is a {question.get_question_type_display().lower()} question in the "
            f"database; the file makes it {row.question_type}"
        )
    if tuple(getattr(question, name) for name in SCALE_FIELDS) != tuple(getattr(row, name) for name in SCALE_FIELDS):
        held = dataclasses.replace(row, **{name: getattr(question, name) for name in SCALE_FIELDS})
        return (
            f"question {row.question_id} has another range in the database ({held.describe_range()}); "
            f"the file says {row.describe_range()}"
        )
    wanted = row.resolution_fields()
    if resolution is None or question.status != Question.Status.RESOLVED:
        return (
            f"question {row.question_id} is {question.status} in the database, not resolved; "
            f"the file says it resolved: {row.describe_outcome()}"
        )
    if (resolution.outcome, resolution.value) != (wanted["outcome"], wanted["value"]):
        return (
            f"question {row.question_id} is resolved as “{resolution.describe()}” in the database; "
            f"the file says {row.describe_outcome()}"
        )
    if row.made_at > resolution.resolved_at:
        return (
            f"made after the question resolved (made_at {iso_utc(row.made_at)}, resolved in the database "
            f"at {iso_utc(resolution.resolved_at)})"
        )
    if row.made_at > question.closes_at:
        return (
            f"made after the question closed (made_at {iso_utc(row.made_at)}, closed in the database "
            f"at {iso_utc(question.closes_at)})"
        )
    return None
