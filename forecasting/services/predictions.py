"""Forecasts: validation and the append-only prediction log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from ..continuous import CdfError, build, validate_cdf
from ..models import MAX_PROBABILITY, MIN_PROBABILITY, RATIONALE_MAX_LENGTH, Prediction, Question
from .aggregates import aggregates_update_for_prediction

PROBABILITY_QUANTUM = Decimal("0.0001")
Status = Question.Status


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


CDF_DECIMALS = 6  # stored like the aggregates: rounding keeps a CDF non-decreasing


def _to_cdf(values: Sequence[object], question: Question) -> list[float]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValidationError({"cdf": "The CDF is a list of 201 numbers."})
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValidationError({"cdf": "The CDF is a list of 201 numbers."}) from None
    try:
        checked = validate_cdf(floats, question.scale)
    except CdfError as error:
        raise ValidationError({"cdf": str(error)}) from None
    return [round(float(x), CDF_DECIMALS) for x in checked]


def cdf_from_components(*, question: Question, components: Sequence[Mapping[str, float]]) -> list[float]:
    """What a reader enters -- up to three components, each a median and an 80% interval (``low``, ``high``:
    the 10th and 90th percentiles) with a ``weight``, in the question's units (dates: epoch seconds) --
    as the question's CDF. Writes nothing."""
    if not question.is_continuous:
        raise ValidationError({"components": "Only numeric and date questions take a distribution."})
    if not components:
        raise ValidationError({"components": "Give at least a median and an interval."})
    try:
        rows = [(c["median"], c["low"], c["high"], c.get("weight", 1.0)) for c in components]
        cdf = build.cdf_from_components(rows, question.scale)
    except CdfError as error:
        raise ValidationError({"components": str(error)}) from None
    return [float(x) for x in cdf]


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
    cdf: Sequence[object] | None = None,
    components: Sequence[Mapping[str, float]] | None = None,
    rationale: str = "",
    now: dt.datetime | None = None,
) -> Prediction:
    """Record a new forecast (a new row; earlier forecasts stay as history).

    ``probability`` is P(YES) in [0.01, 0.99] for binary questions; ``option_probabilities``
    has one probability per option, each in [0.01, 0.99], summing to exactly 1; ``cdf`` is a numeric or
    date question's 201-point CDF on its scaled range (``continuous.validate_cdf``), or its
    ``components`` as readers enter them (``cdf_from_components``). ``rationale`` is
    the forecaster's reasoning (Markdown, at most ``RATIONALE_MAX_LENGTH`` characters).
    """
    rationale = (rationale or "").strip()
    if len(rationale) > RATIONALE_MAX_LENGTH:
        raise ValidationError({"rationale": f"A rationale has at most {RATIONALE_MAX_LENGTH} characters."})
    question = Question.objects.select_for_update().get(pk=question.pk)
    # The clock is read once the question's lock is held: forecasts are then stamped in the order they
    # are written. Read before, a forecast that waited for the lock would carry an earlier time than
    # one written before it, and "the latest forecast" (by time) would not be the last one aggregated.
    now = now or timezone.now()
    if not question.accepts_forecasts(now):
        raise ValidationError(_closed_reason(question, now))

    if components is not None:
        if cdf is not None:
            raise ValidationError({"components": "Give the CDF or its components, not both."})
        cdf = cdf_from_components(question=question, components=components)
    if question.is_continuous:
        if cdf is None or probability is not None or option_probabilities is not None:
            raise ValidationError({"cdf": "A numeric or date question takes a distribution (a CDF)."})
        prediction = Prediction.objects.create(
            question=question, forecaster=forecaster, cdf=_to_cdf(cdf, question), rationale=rationale, made_at=now
        )
        aggregates_update_for_prediction(question=question, prediction=prediction)
        return prediction

    if question.is_binary:
        if probability is None or option_probabilities is not None or cdf is not None:
            raise ValidationError({"probability": "A yes/no question takes one probability of YES."})
        value = _to_probability(probability)
        if not MIN_PROBABILITY <= value <= MAX_PROBABILITY:
            raise ValidationError({"probability": "The probability must be between 1% and 99%."})
        prediction = Prediction.objects.create(
            question=question, forecaster=forecaster, probability=value, rationale=rationale, made_at=now
        )
        aggregates_update_for_prediction(question=question, prediction=prediction)
        return prediction

    n_options = question.options.count()
    if option_probabilities is None or probability is not None or cdf is not None:
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
    prediction = Prediction.objects.create(
        question=question,
        forecaster=forecaster,
        option_probabilities=[str(v) for v in values],
        rationale=rationale,
        made_at=now,
    )
    aggregates_update_for_prediction(question=question, prediction=prediction)
    return prediction


def latest_predictions(*, question: Question, at: dt.datetime | None = None) -> QuerySet[Prediction]:
    """Each forecaster's latest forecast on the question (made at or before ``at``)."""
    candidates = Prediction.objects.filter(question=question)
    if at is not None:
        candidates = candidates.filter(made_at__lte=at)
    newest_per_forecaster = candidates.filter(forecaster=OuterRef("forecaster")).order_by("-made_at", "-id")
    return candidates.filter(pk=Subquery(newest_per_forecaster.values("pk")[:1])).order_by("made_at", "id")
