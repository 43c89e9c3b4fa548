"""Editorial actions on questions: create, edit, open, close, resolve, annul, un-resolve; and the
scheduler's automatic close at the close date (``questions_close_due``).

Each locks the question row, checks the actor's permission (``PermissionDenied``) and the
transition (``ValidationError``), records a ``QuestionEvent``, and after commit schedules
the Celery tasks that recompute what depends on the resolution.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..jobs import enqueue
from ..models import CONTINUOUS_TYPES, Article, Conditional, Question, QuestionEvent, QuestionOption, Resolution
from ..signals import question_status_changed
from .bayesian import bayes_refit_request

Status = Question.Status
logger = logging.getLogger(__name__)

AUTOMATIC_CLOSE_NOTE = "Closed automatically at its close date."


def _require(actor, permission: str) -> None:
    if not actor.has_perm(permission):
        raise PermissionDenied(f"You need the {permission.split('.')[-1].replace('_', ' ')} permission.")


def _locked(question: Question) -> Question:
    return Question.objects.select_for_update().get(pk=question.pk)


def _record(
    question: Question, *, actor, action: str, from_status: str, note: str = "", automatic: bool = False
) -> None:
    QuestionEvent.objects.create(
        question=question,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=question.status,
        note=note,
        automatic=automatic,
    )


def _set_status(question: Question, status: str) -> None:
    question.status = status
    question.save(update_fields=["status", "updated_at"])
    # Receivers (the market: it opens, closes and settles with its question) write in the editor's transaction.
    question_status_changed.send(sender=Question, question=question)


def _schedule_scoring(question: Question, *, reason: str) -> None:
    # After commit: the worker must see the resolution this transaction wrote.
    enqueue("forecasting.tasks.score_question", question.pk)
    enqueue("forecasting.tasks.refit_aggregators")
    if settings.BAYES_AUTO_REFIT:
        bayes_refit_request(reason=f"question {question.pk} {reason}")


# --- validation shared by create and update: each returns {field: message} for what is wrong -------------


def _labels(options: Sequence[str]) -> list[str]:
    return [label.strip() for label in options if label.strip()]


def _title_errors(article: Article, title: str, *, exclude_pk: int | None = None) -> dict[str, str]:
    title_max = Question._meta.get_field("title").max_length
    if not title:
        return {"title": "A question needs a title."}
    if len(title) > title_max:
        return {"title": f"A title has at most {title_max} characters."}
    if Question.objects.filter(article=article, title=title).exclude(pk=exclude_pk).exists():
        return {"title": "This article already has a question with this title."}
    return {}


def _criteria_errors(resolution_criteria: str) -> dict[str, str]:
    return {} if resolution_criteria.strip() else {"resolution_criteria": "Write how the question resolves."}


def _dates_errors(opens_at: dt.datetime, closes_at: dt.datetime) -> dict[str, str]:
    return {"closes_at": "The close date must be after the open date."} if closes_at <= opens_at else {}


def _type_errors(question_type: str, labels: list[str]) -> dict[str, str]:
    label_max = QuestionOption._meta.get_field("label").max_length
    if question_type == Question.Type.MULTIPLE_CHOICE:
        if len(labels) < 2:
            return {"options": "A multiple-choice question needs at least two options."}
        if len(set(labels)) != len(labels):
            return {"options": "Options must be different from each other."}
        if any(len(label) > label_max for label in labels):
            # PostgreSQL would refuse the row (DataError); SQLite would silently keep it.
            return {"options": f"An option has at most {label_max} characters."}
        return {}
    if question_type == Question.Type.BINARY:
        return {"options": "A yes/no question has no options."} if labels else {}
    if question_type in CONTINUOUS_TYPES:
        return {"options": "A numeric or date question has no options."} if labels else {}
    return {"question_type": f"Unknown question type “{question_type}”."}


RANGE_FIELDS = ("range_min", "range_max", "open_lower_bound", "open_upper_bound", "zero_point")


def _range_errors(question_type: str, values: dict[str, Any]) -> dict[str, str]:
    """A numeric or date question needs a range (a log scale's zero point outside it); others none."""
    low, high, zero = values.get("range_min"), values.get("range_max"), values.get("zero_point")
    if question_type not in CONTINUOUS_TYPES:
        if low is not None or high is not None or zero is not None:
            return {"range_min": "Only numeric and date questions have a range."}
        return {}
    if low is None or high is None:
        return {"range_min": "A numeric or date question needs the low and the high end of its range."}
    if not (math.isfinite(low) and math.isfinite(high)):
        return {"range_min": "The ends of the range must be finite numbers."}
    if low >= high:
        return {"range_max": "The high end of the range must be above the low end."}
    if zero is not None and question_type == Question.Type.DATE:
        return {"zero_point": "A date question has no log scale."}
    if zero is not None and (not math.isfinite(zero) or low <= zero <= high):
        return {"zero_point": "A log scale's zero point must lie outside the range."}
    return {}


def _paragraph_errors(paragraph: int | None) -> dict[str, str]:
    if paragraph is not None and not 1 <= paragraph <= 32767:
        return {"paragraph": "The paragraph is a number from 1 (the first); leave it empty for the end."}
    return {}


def _unit_errors(unit: str) -> dict[str, str]:
    unit_max = Question._meta.get_field("unit").max_length
    return {"unit": f"The unit has at most {unit_max} characters."} if len(unit.strip()) > unit_max else {}


def _source_errors(resolution_source: str) -> dict[str, str]:
    source_max = Question._meta.get_field("resolution_source").max_length
    if len(resolution_source) > source_max:
        return {"resolution_source": f"The resolution source has at most {source_max} characters."}
    return {}


@transaction.atomic
def question_create(
    *,
    actor,
    article: Article,
    title: str,
    resolution_criteria: str,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    question_type: str = Question.Type.BINARY,
    options: Sequence[str] = (),
    note: str = "",
    paragraph: int | None = None,
    fine_print: str = "",
    resolution_source: str = "",
    range_min: float | None = None,
    range_max: float | None = None,
    open_lower_bound: bool = False,
    open_upper_bound: bool = False,
    zero_point: float | None = None,
    unit: str = "",
) -> Question:
    """Create a draft question (with its options when multiple choice, its range when numeric or date:
    dates as epoch seconds, ``zero_point`` for a log scale); ``paragraph`` places its card in the
    article (after that paragraph, 1 = the first; ``None``: after the text)."""
    _require(actor, "forecasting.add_question")
    title = title.strip()
    resolution_source = resolution_source.strip()
    labels = _labels(options)
    errors = {
        **_title_errors(article, title),
        **_criteria_errors(resolution_criteria),
        **_dates_errors(opens_at, closes_at),
        **_type_errors(question_type, labels),
        **_range_errors(question_type, {"range_min": range_min, "range_max": range_max, "zero_point": zero_point}),
        **_paragraph_errors(paragraph),
        **_source_errors(resolution_source),
        **_unit_errors(unit),
    }
    if errors:
        raise ValidationError(errors)
    try:
        # A savepoint: a concurrent create of the same title loses the race cleanly, as a field error.
        with transaction.atomic():
            question = Question.objects.create(
                article=article,
                title=title,
                resolution_criteria=resolution_criteria.strip(),
                fine_print=fine_print.strip(),
                resolution_source=resolution_source,
                question_type=question_type,
                opens_at=opens_at,
                closes_at=closes_at,
                paragraph=paragraph,
                status=Status.DRAFT,
                created_by=actor,
                range_min=range_min,
                range_max=range_max,
                open_lower_bound=open_lower_bound,
                open_upper_bound=open_upper_bound,
                zero_point=zero_point,
                unit=unit.strip(),
            )
    except IntegrityError:
        if Question.objects.filter(article=article, title=title).exists():
            raise ValidationError({"title": "This article already has a question with this title."}) from None
        raise
    QuestionOption.objects.bulk_create(
        QuestionOption(question=question, position=i, label=label) for i, label in enumerate(labels)
    )
    _record(question, actor=actor, action=QuestionEvent.Action.CREATED, from_status="", note=note)
    return question


# What an editor may change, and the words the audit note uses for each field.
EDITABLE_FIELDS = {
    "title": "title",
    "resolution_criteria": "resolution criteria",
    "fine_print": "fine print",
    "resolution_source": "resolution source",
    "paragraph": "paragraph",
    "opens_at": "open date",
    "closes_at": "close date",
    "question_type": "type",
    "options": "options",
    "range_min": "range",
    "range_max": "range",
    "open_lower_bound": "open lower bound",
    "open_upper_bound": "open upper bound",
    "zero_point": "log scale",
    "unit": "unit",
}
# Forecasts were made against these: once a question has left draft they stay as they are.
FIXED_AFTER_DRAFT = {
    "question_type": "The type cannot change once the question has been opened.",
    "options": "The options cannot change once the question has been opened.",
    "opens_at": "The open date cannot change once the question has been opened.",
    **{name: "The range cannot change once the question has been opened." for name in RANGE_FIELDS},
}


@transaction.atomic
def question_update(*, question: Question, actor, note: str = "", **fields: Any) -> Question:
    """Change a question's wording, placement or dates (the ``EDITABLE_FIELDS`` passed; the rest stay).

    A draft may change everything; once opened, the type, options and open date are fixed, and an open
    question's close date cannot move into the past. Values equal to the current ones are not changes:
    an edit that changes nothing records nothing. Records an ``edited`` event naming the changed fields.
    """
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"question_update() cannot change {', '.join(sorted(unknown))}")
    _require(actor, "forecasting.change_question")
    question = _locked(question)
    current_labels = list(question.options.order_by("position").values_list("label", flat=True))
    current = {name: getattr(question, name) for name in EDITABLE_FIELDS if name != "options"}
    current["options"] = current_labels
    new = dict(current)
    for name, value in fields.items():
        if name == "options":
            value = _labels(value)
        elif isinstance(value, str):
            value = value.strip()
        new[name] = value
    if new["question_type"] != Question.Type.MULTIPLE_CHOICE and "options" not in fields:
        new["options"] = []  # a draft turned yes/no, numeric or date loses its options
    if new["question_type"] not in CONTINUOUS_TYPES:
        new |= {"range_min": None, "range_max": None, "zero_point": None}  # ... and its range
    changed = [name for name in EDITABLE_FIELDS if new[name] != current[name]]

    errors: dict[str, str] = {}
    if question.status != Status.DRAFT:
        errors |= {name: message for name, message in FIXED_AFTER_DRAFT.items() if name in changed}
    if "title" in changed:
        errors |= _title_errors(question.article, new["title"], exclude_pk=question.pk)
    if "resolution_criteria" in changed:
        errors |= _criteria_errors(new["resolution_criteria"])
    if {"opens_at", "closes_at"} & set(changed):
        errors |= _dates_errors(new["opens_at"], new["closes_at"])
    if "closes_at" in changed and question.status == Status.OPEN and new["closes_at"] <= timezone.now():
        errors.setdefault("closes_at", "An open question's close date cannot be in the past; close it instead.")
    if {"question_type", "options"} & set(changed):
        errors |= {k: v for k, v in _type_errors(new["question_type"], new["options"]).items() if k not in errors}
    if {"question_type", *RANGE_FIELDS} & set(changed):
        errors |= {k: v for k, v in _range_errors(new["question_type"], new).items() if k not in errors}
    if "unit" in changed:
        errors |= _unit_errors(new["unit"])
    if "paragraph" in changed:
        errors |= _paragraph_errors(new["paragraph"])
    if "resolution_source" in changed:
        errors |= _source_errors(new["resolution_source"])
    if errors:
        raise ValidationError(errors)
    if not changed:
        return question

    columns = [name for name in changed if name != "options"]
    for name in columns:
        setattr(question, name, new[name])
    try:
        with transaction.atomic():  # a concurrent edit taking the same title: a field error, as in create
            question.save(update_fields=[*columns, "updated_at"])
    except IntegrityError:
        if Question.objects.filter(article=question.article, title=new["title"]).exclude(pk=question.pk).exists():
            raise ValidationError({"title": "This article already has a question with this title."}) from None
        raise
    if new["options"] != current_labels:
        # Only a draft gets here (FIXED_AFTER_DRAFT): no forecast or resolution refers to these options yet.
        question.options.all().delete()
        QuestionOption.objects.bulk_create(
            QuestionOption(question=question, position=i, label=label) for i, label in enumerate(new["options"])
        )
    summary = "Changed " + ", ".join(dict.fromkeys(EDITABLE_FIELDS[name] for name in changed)) + "."
    _record(
        question,
        actor=actor,
        action=QuestionEvent.Action.EDITED,
        from_status=question.status,
        note=f"{summary} {note.strip()}".strip(),
    )
    return question


@transaction.atomic
def question_open(*, question: Question, actor, note: str = "") -> Question:
    """Open a draft (or re-open a closed) question for forecasts."""
    _require(actor, "forecasting.open_question")
    question = _locked(question)
    if question.status not in (Status.DRAFT, Status.CLOSED):
        raise ValidationError(f"Only a draft or closed question can be opened; this one is {question.status}.")
    if question.closes_at <= timezone.now():
        raise ValidationError("The close date has passed; move it later before opening the question.")
    from_status = question.status
    if question.published_at is None:
        # Readers see a question only once it has opened; nothing later (annul, un-resolve) publishes it.
        question.published_at = timezone.now()
        question.save(update_fields=["published_at"])
    _set_status(question, Status.OPEN)
    _record(question, actor=actor, action=QuestionEvent.Action.OPENED, from_status=from_status, note=note)
    return question


@transaction.atomic
def question_close(*, question: Question, actor, note: str = "") -> Question:
    """Stop taking forecasts; the question awaits resolution."""
    _require(actor, "forecasting.close_question")
    question = _locked(question)
    if question.status != Status.OPEN:
        raise ValidationError(f"Only an open question can be closed; this one is {question.status}.")
    _close(question, actor=actor, note=note)
    return question


def _close(question: Question, *, actor, note: str, automatic: bool = False) -> None:
    """The one close transition, an editor's or the scheduler's: the caller holds the row's lock."""
    _set_status(question, Status.CLOSED)
    _record(
        question,
        actor=actor,
        action=QuestionEvent.Action.CLOSED,
        from_status=Status.OPEN,
        note=note,
        automatic=automatic,
    )


def questions_close_due(*, now: dt.datetime | None = None) -> list[int]:
    """Close every open question whose close date has come (the scheduler's beat, every minute).

    Each question closes in its own transaction, under its row lock, re-checked there: a run that
    overlaps another skips the rows the other holds (``skip_locked``) and finds closed those it already
    did, and a question an editor re-opened with a later date is not due. So running twice, or late,
    closes each question once, with one event. Returns the ids closed by this run.
    """
    now = now or timezone.now()
    due = Question.objects.filter(status=Status.OPEN, closes_at__lte=now).order_by("closes_at", "id")
    closed = []
    for pk in due.values_list("pk", flat=True):
        try:
            if _close_if_due(pk, now):
                closed.append(pk)
        except Exception:  # one question failing (its market, say) must not keep the others open
            logger.exception("Could not close question %s at its close date; the next run retries", pk)
    return closed


@transaction.atomic
def _close_if_due(pk: int, now: dt.datetime) -> bool:
    question = (
        Question.objects.select_for_update(skip_locked=True)
        .filter(pk=pk, status=Status.OPEN, closes_at__lte=now)
        .first()
    )
    if question is None:
        return False
    _close(question, actor=None, note=AUTOMATIC_CLOSE_NOTE, automatic=True)
    return True


def active_resolution(question: Question) -> Resolution | None:
    return question.resolutions.select_related("option").filter(retracted_at__isnull=True).first()


@transaction.atomic
def question_resolve(
    *,
    question: Question,
    actor,
    outcome: str,
    option_id: int | None = None,
    value: float | None = None,
    note: str = "",
    source: str = "",
) -> Resolution:
    """Resolve an open or closed question: YES/NO, one option of a multiple-choice question, or for a
    numeric or date question a ``value`` (dates as epoch seconds) or, past an open bound, "below" /
    "above" the range. ``source`` says where the outcome was read (a URL or a citation), shown to readers.

    Resolving again with the same outcome returns the existing resolution (a double-submitted
    form is harmless); another outcome is refused until the question is un-resolved.
    """
    _require(actor, "forecasting.resolve_question")
    question = _locked(question)
    if _conditional_branch(question):
        raise ValidationError("A conditional question resolves by itself, when its condition and its outcome do.")
    source = source.strip()
    source_max = Resolution._meta.get_field("source").max_length
    if len(source) > source_max:
        raise ValidationError({"source": f"The source has at most {source_max} characters."})
    option = None
    if question.is_binary:
        if outcome not in (Resolution.Outcome.YES, Resolution.Outcome.NO):
            raise ValidationError({"outcome": "A yes/no question resolves as “yes” or “no”."})
    elif question.is_continuous:
        outcome, value = _continuous_outcome(question, outcome, value)
    else:
        option = question.options.filter(pk=option_id).first() if option_id is not None else None
        if outcome != Resolution.Outcome.OPTION or option is None:
            raise ValidationError({"outcome": "Choose the option this question resolves to."})

    current = active_resolution(question)
    if current is not None:
        if (
            current.outcome == outcome
            and current.option_id == (option.pk if option else None)
            and current.value == value
        ):
            return current
        raise ValidationError(
            f"This question is already {question.get_status_display().lower()} as “{current.describe()}”. "
            "Un-resolve it first to change the outcome."
        )
    if question.status not in (Status.OPEN, Status.CLOSED):
        raise ValidationError(f"A {question.status} question cannot be resolved.")

    from_status = question.status
    resolution = Resolution.objects.create(
        question=question, outcome=outcome, option=option, value=value, note=note, source=source, resolved_by=actor
    )
    _set_status(question, Status.RESOLVED)
    audit_note = " ".join(part for part in (note.strip(), f"Source: {source}" if source else "") if part)
    _record(question, actor=actor, action=QuestionEvent.Action.RESOLVED, from_status=from_status, note=audit_note)
    _schedule_scoring(question, reason="resolved")
    return resolution


def _continuous_outcome(question: Question, outcome: str, value: float | None) -> tuple[str, float | None]:
    """A numeric or date outcome as stored: a value inside the range (or past an open bound, which
    resolves "below" / "above" as Metaculus), or "below" / "above" with no value."""
    Outcome = Resolution.Outcome
    if outcome == Outcome.VALUE:
        if value is None or not math.isfinite(value):
            raise ValidationError({"value": "Give the value this question resolves to."})
        if value < question.range_min:
            if not question.open_lower_bound:
                raise ValidationError({"value": "The value is below the range, whose low end is closed."})
            return Outcome.BELOW, None
        if value > question.range_max:
            if not question.open_upper_bound:
                raise ValidationError({"value": "The value is above the range, whose high end is closed."})
            return Outcome.ABOVE, None
        return Outcome.VALUE, float(value)
    if (outcome == Outcome.BELOW and question.open_lower_bound) or (
        outcome == Outcome.ABOVE and question.open_upper_bound
    ):
        return outcome, None
    if outcome in (Outcome.BELOW, Outcome.ABOVE):
        raise ValidationError({"outcome": "This side of the range is closed: the outcome cannot fall beyond it."})
    raise ValidationError({"outcome": "A numeric or date question resolves to a value, or below or above its range."})


@transaction.atomic
def question_settle_automatically(*, question: Question, outcome: str | None, resolved_by, note: str) -> bool:
    """Give a question the resolution its rules imply, with no editor's action (a conditional's branch
    follows its condition and outcome): ``outcome`` "yes", "no" or "annulled"; ``None`` retracts what
    is there (back to closed). ``resolved_by`` is whoever's action caused it. Idempotent: returns
    whether anything changed. Recorded as an automatic event."""
    question = _locked(question)
    current = active_resolution(question)
    if (current.outcome if current else None) == outcome:
        return False
    if outcome is None and question.status not in (Status.RESOLVED, Status.ANNULLED):
        return False
    from_status = question.status
    if current is not None:
        current.retracted_at = timezone.now()
        current.retracted_by = resolved_by
        current.save(update_fields=["retracted_at", "retracted_by"])
    if outcome is None:
        action, status = QuestionEvent.Action.UNRESOLVED, Status.CLOSED
    else:
        Resolution.objects.create(question=question, outcome=outcome, note=note, resolved_by=resolved_by)
        annulled = outcome == Resolution.Outcome.ANNULLED
        action = QuestionEvent.Action.ANNULLED if annulled else QuestionEvent.Action.RESOLVED
        status = Status.ANNULLED if annulled else Status.RESOLVED
    _set_status(question, status)
    _record(question, actor=None, action=action, from_status=from_status, note=note, automatic=True)
    _schedule_scoring(question, reason="settled automatically")
    return True


def _conditional_branch(question: Question) -> bool:
    return Conditional.objects.filter(Q(if_yes=question) | Q(if_no=question)).exists()


@transaction.atomic
def question_annul(*, question: Question, actor, note: str = "") -> Resolution:
    """Annul a question that cannot resolve fairly: nobody is scored on it."""
    _require(actor, "forecasting.annul_question")
    question = _locked(question)
    current = active_resolution(question)
    if current is not None and current.outcome == Resolution.Outcome.ANNULLED:
        return current
    if question.status not in (Status.DRAFT, Status.OPEN, Status.CLOSED):
        raise ValidationError(f"A {question.status} question cannot be annulled; un-resolve it first.")
    from_status = question.status
    resolution = Resolution.objects.create(
        question=question, outcome=Resolution.Outcome.ANNULLED, note=note, resolved_by=actor
    )
    _set_status(question, Status.ANNULLED)
    _record(question, actor=actor, action=QuestionEvent.Action.ANNULLED, from_status=from_status, note=note)
    _schedule_scoring(question, reason="annulled")
    return resolution


@transaction.atomic
def question_unresolve(*, question: Question, actor, note: str = "") -> Question:
    """Retract a resolution or annulment; the question goes back to closed and loses its scores."""
    _require(actor, "forecasting.resolve_question")
    question = _locked(question)
    if question.status not in (Status.RESOLVED, Status.ANNULLED):
        raise ValidationError(
            f"Only a resolved or annulled question can be un-resolved; this one is {question.status}."
        )
    current = active_resolution(question)
    if current is not None:
        current.retracted_at = timezone.now()
        current.retracted_by = actor
        current.save(update_fields=["retracted_at", "retracted_by"])
    from_status = question.status
    _set_status(question, Status.CLOSED)
    _record(question, actor=actor, action=QuestionEvent.Action.UNRESOLVED, from_status=from_status, note=note)
    _schedule_scoring(question, reason="un-resolved")
    return question
