"""Business logic for questions, forecasts, resolutions and scores.

Every write is one atomic transaction that locks the question row first, so an editor
closing a question and a reader forecasting on it cannot interleave. Functions raise
``ValidationError`` for bad input (and change nothing) and ``PermissionDenied`` when the
actor may not act.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from . import aggregation, scoring
from .models import (
    MAX_PROBABILITY,
    MIN_PROBABILITY,
    Article,
    Prediction,
    Question,
    QuestionEvent,
    QuestionOption,
    Resolution,
    Score,
)

PROBABILITY_QUANTUM = Decimal("0.0001")
SCORE_QUANTUM = Decimal("0.000001")

Status = Question.Status


# --- forecasts --------------------------------------------------------------------------------


def _to_probability(value: object, *, field: str = "probability") -> Decimal:
    try:
        probability = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError({field: f"“{value}” is not a number."}) from None
    if not probability.is_finite():
        raise ValidationError({field: "The probability must be a finite number."})
    if probability != probability.quantize(PROBABILITY_QUANTUM):
        raise ValidationError({field: "Use at most two decimals of a percent (e.g. 37.25%)."})
    return probability


def _closed_reason(question: Question, now: dt.datetime) -> str:
    if question.status == Status.OPEN and now < question.opens_at:
        return f"This question opens for forecasts on {question.opens_at:%d %b %Y %H:%M} UTC."
    if question.status == Status.OPEN:
        return "This question closed for forecasts at its close date."
    return f"This question is {question.get_status_display().lower()} and no longer takes forecasts."


@transaction.atomic
def prediction_create(
    *,
    question: Question,
    forecaster,
    probability: object | None = None,
    option_probabilities: Sequence[object] | None = None,
    now: dt.datetime | None = None,
) -> Prediction:
    """Record a new forecast (a new row; earlier forecasts stay as history).

    ``probability`` is P(YES) in [0.01, 0.99] for binary questions; ``option_probabilities``
    has one probability per option, each in [0.01, 0.99], summing to exactly 1.
    """
    now = now or timezone.now()
    question = Question.objects.select_for_update().get(pk=question.pk)
    if not question.accepts_forecasts(now):
        raise ValidationError(_closed_reason(question, now))

    if question.is_binary:
        if probability is None or option_probabilities is not None:
            raise ValidationError({"probability": "A yes/no question takes one probability of YES."})
        value = _to_probability(probability)
        if not MIN_PROBABILITY <= value <= MAX_PROBABILITY:
            raise ValidationError({"probability": "The probability must be between 1% and 99%."})
        return Prediction.objects.create(question=question, forecaster=forecaster, probability=value, made_at=now)

    n_options = question.options.count()
    if option_probabilities is None or probability is not None:
        raise ValidationError({"option_probabilities": "A multiple-choice question takes one probability per option."})
    if len(option_probabilities) != n_options:
        raise ValidationError({"option_probabilities": f"Give one probability for each of the {n_options} options."})
    values = [_to_probability(v, field="option_probabilities") for v in option_probabilities]
    if any(not MIN_PROBABILITY <= v <= MAX_PROBABILITY for v in values):
        raise ValidationError({"option_probabilities": "Each option's probability must be between 1% and 99%."})
    total = sum(values)
    if total != Decimal(1):
        raise ValidationError(
            {"option_probabilities": f"The probabilities must add up to 100%; they add up to {total * 100:.2f}%."}
        )
    return Prediction.objects.create(
        question=question, forecaster=forecaster, option_probabilities=[str(v) for v in values], made_at=now
    )


def latest_predictions(*, question: Question, at: dt.datetime | None = None) -> QuerySet[Prediction]:
    """Each forecaster's latest forecast on the question (made at or before ``at``)."""
    candidates = Prediction.objects.filter(question=question)
    if at is not None:
        candidates = candidates.filter(made_at__lte=at)
    newest_per_forecaster = candidates.filter(forecaster=OuterRef("forecaster")).order_by("-made_at", "-id")
    return candidates.filter(pk=Subquery(newest_per_forecaster.values("pk")[:1])).order_by("made_at", "id")


@dataclass(frozen=True)
class CommunityForecast:
    forecasters: int
    probabilities: list[float] | None  # one per outcome: [P(no), P(yes)] or one per option

    @property
    def probability_yes(self) -> float | None:
        return None if self.probabilities is None else self.probabilities[-1]


def community_forecast(*, question: Question, at: dt.datetime | None = None) -> CommunityForecast:
    """Median of the forecasters' latest forecasts (renormalised for multiple choice)."""
    latest = list(latest_predictions(question=question, at=at))
    if not latest:
        return CommunityForecast(forecasters=0, probabilities=None)
    if question.is_binary:
        p_yes = aggregation.median([float(p.probability) for p in latest])
        return CommunityForecast(forecasters=len(latest), probabilities=[1.0 - p_yes, p_yes])
    vector = aggregation.categorical_median([p.probability_vector() for p in latest])
    return CommunityForecast(forecasters=len(latest), probabilities=[float(x) for x in vector])


# --- editorial actions --------------------------------------------------------------------------


def _require(actor, permission: str) -> None:
    if not actor.has_perm(permission):
        raise PermissionDenied(f"You need the {permission.split('.')[-1].replace('_', ' ')} permission.")


def _locked(question: Question) -> Question:
    return Question.objects.select_for_update().get(pk=question.pk)


def _record(question: Question, *, actor, action: str, from_status: str, note: str = "") -> None:
    QuestionEvent.objects.create(
        question=question, actor=actor, action=action, from_status=from_status, to_status=question.status, note=note
    )


def _set_status(question: Question, status: str) -> None:
    question.status = status
    question.save(update_fields=["status", "updated_at"])


def _schedule_scoring(question: Question) -> None:
    from .tasks import score_question

    # After commit: the worker must see the resolution this transaction wrote.
    score_question.delay_on_commit(question.pk)


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
) -> Question:
    """Create a draft question (with its options when multiple choice)."""
    _require(actor, "forecasting.add_question")
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = "A question needs a title."
    if not resolution_criteria.strip():
        errors["resolution_criteria"] = "Write how the question resolves."
    if closes_at <= opens_at:
        errors["closes_at"] = "The close date must be after the open date."
    labels = [label.strip() for label in options if label.strip()]
    if question_type == Question.Type.MULTIPLE_CHOICE:
        if len(labels) < 2:
            errors["options"] = "A multiple-choice question needs at least two options."
        elif len(set(labels)) != len(labels):
            errors["options"] = "Options must be different from each other."
    elif question_type == Question.Type.BINARY:
        if labels:
            errors["options"] = "A yes/no question has no options."
    else:
        errors["question_type"] = f"Unknown question type “{question_type}”."
    if errors:
        raise ValidationError(errors)
    question = Question.objects.create(
        article=article,
        title=title.strip(),
        resolution_criteria=resolution_criteria.strip(),
        question_type=question_type,
        opens_at=opens_at,
        closes_at=closes_at,
        status=Status.DRAFT,
        created_by=actor,
    )
    QuestionOption.objects.bulk_create(
        QuestionOption(question=question, position=i, label=label) for i, label in enumerate(labels)
    )
    _record(question, actor=actor, action=QuestionEvent.Action.CREATED, from_status="", note=note)
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
    _set_status(question, Status.CLOSED)
    _record(question, actor=actor, action=QuestionEvent.Action.CLOSED, from_status=Status.OPEN, note=note)
    return question


def _active_resolution(question: Question) -> Resolution | None:
    return question.resolutions.select_related("option").filter(retracted_at__isnull=True).first()


@transaction.atomic
def question_resolve(
    *, question: Question, actor, outcome: str, option_id: int | None = None, note: str = ""
) -> Resolution:
    """Resolve an open or closed question: YES/NO, or one option of a multiple-choice question.

    Resolving again with the same outcome returns the existing resolution (a double-submitted
    form is harmless); another outcome is refused until the question is un-resolved.
    """
    _require(actor, "forecasting.resolve_question")
    question = _locked(question)
    option = None
    if question.is_binary:
        if outcome not in (Resolution.Outcome.YES, Resolution.Outcome.NO):
            raise ValidationError({"outcome": "A yes/no question resolves as “yes” or “no”."})
    else:
        option = question.options.filter(pk=option_id).first() if option_id is not None else None
        if outcome != Resolution.Outcome.OPTION or option is None:
            raise ValidationError({"outcome": "Choose the option this question resolves to."})

    current = _active_resolution(question)
    if current is not None:
        if current.outcome == outcome and current.option_id == (option.pk if option else None):
            return current
        raise ValidationError(
            f"This question is already {question.get_status_display().lower()} as “{current.describe()}”. "
            "Un-resolve it first to change the outcome."
        )
    if question.status not in (Status.OPEN, Status.CLOSED):
        raise ValidationError(f"A {question.status} question cannot be resolved.")

    from_status = question.status
    resolution = Resolution.objects.create(
        question=question, outcome=outcome, option=option, note=note, resolved_by=actor
    )
    _set_status(question, Status.RESOLVED)
    _record(question, actor=actor, action=QuestionEvent.Action.RESOLVED, from_status=from_status, note=note)
    _schedule_scoring(question)
    return resolution


@transaction.atomic
def question_annul(*, question: Question, actor, note: str = "") -> Resolution:
    """Annul a question that cannot resolve fairly: nobody is scored on it."""
    _require(actor, "forecasting.annul_question")
    question = _locked(question)
    current = _active_resolution(question)
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
    _schedule_scoring(question)
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
    current = _active_resolution(question)
    if current is not None:
        current.retracted_at = timezone.now()
        current.retracted_by = actor
        current.save(update_fields=["retracted_at", "retracted_by"])
    from_status = question.status
    _set_status(question, Status.CLOSED)
    _record(question, actor=actor, action=QuestionEvent.Action.UNRESOLVED, from_status=from_status, note=note)
    _schedule_scoring(question)
    return question


# --- scores -------------------------------------------------------------------------------------


@transaction.atomic
def question_scores_recompute(*, question_id: int) -> int:
    """Make the question's Score rows match its current resolution; returns how many it holds.

    Recomputed from the database every time, so running it twice (or after a retried task)
    leaves the same rows: scores are upserted on (question, forecaster, kind) and scores of a
    question that is no longer resolved are removed.
    """
    question = Question.objects.select_for_update().get(pk=question_id)
    resolution = _active_resolution(question)
    outcome_index = resolution.outcome_index() if resolution is not None else None
    if question.status != Status.RESOLVED or outcome_index is None:
        Score.objects.filter(question=question).delete()
        return 0

    latest = list(latest_predictions(question=question, at=resolution.resolved_at))
    if not latest:
        Score.objects.filter(question=question).delete()
        return 0
    if question.is_binary:
        p_yes = np.array([float(p.probability) for p in latest])
        values = {
            Score.Kind.BRIER: scoring.binary_brier(p_yes, outcome_index),
            Score.Kind.LOG: scoring.binary_log(p_yes, outcome_index),
        }
    else:
        matrix = np.array([p.probability_vector() for p in latest])
        values = {
            Score.Kind.BRIER: scoring.categorical_brier(matrix, outcome_index),
            Score.Kind.LOG: scoring.categorical_log(matrix, outcome_index),
        }
    now = timezone.now()
    rows = [
        Score(
            question=question,
            forecaster_id=prediction.forecaster_id,
            resolution=resolution,
            prediction=prediction,
            kind=kind,
            value=Decimal(repr(float(kind_values[i]))).quantize(SCORE_QUANTUM),
            computed_at=now,
        )
        for kind, kind_values in values.items()
        for i, prediction in enumerate(latest)
    ]
    Score.objects.filter(question=question).exclude(forecaster_id__in=[p.forecaster_id for p in latest]).delete()
    Score.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["question", "forecaster", "kind"],
        update_fields=["resolution", "prediction", "value", "computed_at"],
    )
    return len(rows)
