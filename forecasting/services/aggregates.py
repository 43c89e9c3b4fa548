"""Aggregate history: every registered method's value after each new forecast.

A forecast updates the question's ``AggregateState`` (each forecaster's latest forecast,
packed as arrays) and appends one ``AggregateSnapshot`` per method, all inside the
forecast's transaction and under the question's row lock. Nothing re-reads the question's
forecasts; ``aggregate_history_rebuild`` replays them from scratch when history must be
recomputed (an import, a repair).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Count, Max

from .. import aggregation
from ..models import (
    AggregateSnapshot,
    AggregateState,
    AggregatorFit,
    Prediction,
    Question,
    QuestionOption,
    Resolution,
)
from .bayesian import bayes_aggregate_schedule
from .latest import LatestForecasts, prediction_vector, question_outcomes

HEADLINE_METHOD = "recency_weighted_median"  # what readers see as "the community prediction"
MIN_QUESTIONS_TO_FIT = 10


def aggregator_parameters() -> dict[str, dict]:
    """The latest fitted parameters of every method that learns some (e.g. the extremizing factor)."""
    parameters: dict[str, dict] = {}
    for name, aggregator in aggregation.AGGREGATORS.items():
        if not aggregator.parameters:
            continue
        fit = AggregatorFit.objects.filter(method=name).order_by("-fitted_at", "-id").first()
        parameters[name] = dict(fit.parameters) if fit else {}
    return parameters


def _aggregate_all(probabilities: np.ndarray, parameters: dict[str, dict]) -> dict[str, np.ndarray]:
    return {
        name: aggregator(probabilities, **parameters.get(name, {}))
        for name, aggregator in aggregation.AGGREGATORS.items()
    }


def _snapshots(
    question: Question, prediction: Prediction, latest: LatestForecasts, parameters: dict[str, dict]
) -> list[AggregateSnapshot]:
    values = _aggregate_all(latest.probabilities, parameters)
    return [
        AggregateSnapshot(
            question=question,
            method=name,
            at=prediction.made_at,
            probabilities=[round(float(x), 6) for x in vector],
            forecasters=len(latest.forecaster_ids),
            prediction=prediction,
            parameters=parameters.get(name, {}),
        )
        for name, vector in values.items()
    ]


def aggregates_update_for_prediction(*, question: Question, prediction: Prediction) -> list[AggregateSnapshot]:
    """Fold one new forecast into the question's aggregates; the caller holds the question's row lock."""
    state, _ = AggregateState.objects.get_or_create(
        question=question, defaults={"outcomes": question_outcomes(question)}
    )
    latest = LatestForecasts.load(state).with_forecast(
        prediction.forecaster_id, prediction.made_at.timestamp(), prediction_vector(prediction)
    )
    latest.store(state)
    state.last_prediction = prediction
    state.save()
    bayes_aggregate_schedule(state=state)
    return AggregateSnapshot.objects.bulk_create(_snapshots(question, prediction, latest, aggregator_parameters()))


def _latest_from_database(question: Question) -> tuple[LatestForecasts, Prediction | None]:
    latest: dict[int, tuple[float, np.ndarray]] = {}
    last = None
    for prediction in Prediction.objects.filter(question=question).order_by("made_at", "id"):
        latest.pop(prediction.forecaster_id, None)  # re-inserted last: dicts keep insertion order
        latest[prediction.forecaster_id] = (prediction.made_at.timestamp(), prediction_vector(prediction))
        last = prediction
    k = question_outcomes(question)
    if not latest:
        return LatestForecasts(np.empty(0, dtype=np.int64), np.empty(0), np.empty((0, k))), None
    return (
        LatestForecasts(
            np.fromiter(latest.keys(), dtype=np.int64, count=len(latest)),
            np.array([made for made, _ in latest.values()]),
            np.vstack([vector for _, vector in latest.values()]),
        ),
        last,
    )


def aggregates_recompute(*, question: Question) -> dict[str, np.ndarray]:
    """Current aggregates from a full read of the question's forecasts (the slow path; a check and a baseline)."""
    latest, last = _latest_from_database(question)
    if last is None:
        return {}
    return _aggregate_all(latest.probabilities, aggregator_parameters())


@transaction.atomic
def aggregate_state_rebuild(*, question_id: int) -> list[AggregateSnapshot]:
    """Rebuild the question's state from a full read of its forecasts and store the current aggregates.

    The full-recompute path: what a new forecast would cost without the incremental state.
    Idempotent; the history before the last forecast is left as it is.
    """
    question = Question.objects.select_for_update().get(pk=question_id)
    latest, last = _latest_from_database(question)
    state, _ = AggregateState.objects.get_or_create(
        question=question, defaults={"outcomes": question_outcomes(question)}
    )
    latest.store(state)
    state.last_prediction = last
    state.save()
    if last is None:
        return []
    AggregateSnapshot.objects.filter(question=question, prediction=last).delete()
    return AggregateSnapshot.objects.bulk_create(_snapshots(question, last, latest, aggregator_parameters()))


def _replay(
    question: Question, predictions: list[Prediction], outcomes: int, parameters: dict[str, dict]
) -> tuple[LatestForecasts, list[AggregateSnapshot]]:
    """The state and the snapshot after each of ``predictions`` (in (made_at, id) order)."""
    latest = LatestForecasts(np.empty(0, dtype=np.int64), np.empty(0), np.empty((0, outcomes)))
    snapshots: list[AggregateSnapshot] = []
    for prediction in predictions:
        latest = latest.with_forecast(
            prediction.forecaster_id, prediction.made_at.timestamp(), prediction_vector(prediction)
        )
        snapshots.extend(_snapshots(question, prediction, latest, parameters))
    return latest, snapshots


@transaction.atomic
def aggregate_history_rebuild(*, question_id: int) -> int:
    """Recompute the question's whole aggregate history from its forecasts; returns snapshots written.

    Idempotent: the state and snapshots are replaced. Uses the current fitted parameters.
    """
    return aggregate_history_rebuild_many(question_ids=[question_id])


@transaction.atomic
def aggregate_history_rebuild_many(*, question_ids: list[int]) -> int:
    """``aggregate_history_rebuild`` for many questions in a few queries (imports)."""
    questions = list(Question.objects.select_for_update().filter(pk__in=question_ids).order_by("pk"))
    option_counts = dict(
        QuestionOption.objects.filter(question__in=questions)
        .values("question")
        .annotate(n=Count("id"))
        .values_list("question", "n")
    )
    by_question: dict[int, list[Prediction]] = defaultdict(list)
    for prediction in Prediction.objects.filter(question__in=questions).order_by("question_id", "made_at", "id"):
        by_question[prediction.question_id].append(prediction)
    AggregateSnapshot.objects.filter(question__in=questions).delete()
    AggregateState.objects.filter(question__in=questions).delete()
    parameters = aggregator_parameters()
    states, snapshots = [], []
    for question in questions:
        outcomes = 2 if question.is_binary else option_counts.get(question.pk, 0)
        predictions = by_question[question.pk]
        latest, question_snapshots = _replay(question, predictions, outcomes, parameters)
        state = AggregateState(
            question=question, outcomes=outcomes, last_prediction=predictions[-1] if predictions else None
        )
        latest.store(state)
        states.append(state)
        snapshots.extend(question_snapshots)
    AggregateState.objects.bulk_create(states, batch_size=500)
    AggregateSnapshot.objects.bulk_create(snapshots, batch_size=2000)
    return len(snapshots)


def aggregates_current(*, question: Question) -> dict[str, AggregateSnapshot]:
    """The latest snapshot of every method, by method name (empty before the first forecast)."""
    newest = (
        AggregateSnapshot.objects.filter(question=question)
        .values("method")
        .annotate(last_id=Max("id"))
        .values_list("last_id", flat=True)
    )
    by_method = {s.method: s for s in AggregateSnapshot.objects.filter(id__in=list(newest))}
    return {name: by_method[name] for name in aggregation.AGGREGATORS if name in by_method}


def aggregate_history(*, question: Question, method: str = HEADLINE_METHOD) -> list[AggregateSnapshot]:
    return list(AggregateSnapshot.objects.filter(question=question, method=method).order_by("at", "id"))


@dataclass(frozen=True)
class CommunityForecast:
    forecasters: int
    probabilities: list[float] | None  # one per outcome: [P(no), P(yes)] or one per option
    method: str = HEADLINE_METHOD

    @property
    def probability_yes(self) -> float | None:
        return None if self.probabilities is None else self.probabilities[-1]


def community_forecast(*, question: Question) -> CommunityForecast:
    """The headline community prediction (recency-weighted median) from the stored aggregates."""
    snapshot = (
        AggregateSnapshot.objects.filter(question=question, method=HEADLINE_METHOD).order_by("-at", "-id").first()
    )
    if snapshot is None:
        return CommunityForecast(forecasters=0, probabilities=None)
    return CommunityForecast(forecasters=snapshot.forecasters, probabilities=list(snapshot.probabilities))


@transaction.atomic
def aggregator_fits_refresh(*, now: dt.datetime | None = None) -> list[AggregatorFit]:
    """Refit learnt parameters (the extremizing factor) on every resolved question.

    Each question contributes its forecasters' latest forecasts at resolution (two or more
    forecasters). With fewer than ``MIN_QUESTIONS_TO_FIT`` such questions the factor stays at
    its neutral default. Reads every resolved forecast in one query.
    """
    resolutions = {
        r.question_id: r
        for r in Resolution.objects.filter(retracted_at__isnull=True, question__status=Question.Status.RESOLVED)
        .exclude(outcome=Resolution.Outcome.ANNULLED)
        .select_related("option")
    }
    latest: dict[int, dict[int, Prediction]] = defaultdict(dict)
    forecasts = Prediction.objects.filter(question_id__in=list(resolutions)).order_by("question_id", "made_at", "id")
    for prediction in forecasts.iterator(chunk_size=5000):
        if prediction.made_at <= resolutions[prediction.question_id].resolved_at:
            latest[prediction.question_id][prediction.forecaster_id] = prediction
    statistics, outcomes = [], []
    for question_id, standing in latest.items():
        if len(standing) < 2:
            continue
        matrix = np.vstack([prediction_vector(p) for p in standing.values()])
        statistics.append(aggregation.mean_log_probabilities(matrix))
        outcomes.append(resolutions[question_id].outcome_index())
    if len(statistics) >= MIN_QUESTIONS_TO_FIT:
        factor = aggregation.fit_extremizing_factor(statistics, outcomes)
    else:
        factor = aggregation.DEFAULT_EXTREMIZING_FACTOR
    fit = AggregatorFit.objects.create(
        method="extremized_logodds",
        parameters={"factor": round(factor, 6)},
        questions_used=len(statistics),
        **({"fitted_at": now} if now else {}),
    )
    return [fit]
