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
from django.db.models import Count, Subquery

from .. import aggregation
from ..continuous import aggregation as continuous_aggregation
from ..continuous import learnt as continuous_learnt
from ..continuous import scoring as continuous_scoring
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
from .latest import CHECKPOINT_EVERY, TAIL_METHOD, LatestForecasts, prediction_vector, question_outcomes

HEADLINE_METHOD = "recency_weighted_median"  # what readers see as "the community prediction"
MIN_QUESTIONS_TO_FIT = 10

# Numeric and date questions: each method maps the latest CDFs (oldest first) to one CDF; ``learnt_pool``
# (``_learnt_pool``) also reads who made them and the fit of ``aggregator_fits_refresh``.
CONTINUOUS_AGGREGATORS = {
    "recency_weighted_mean": continuous_aggregation.recency_weighted_mean,  # Metaculus's community CDF
    "linear_pool": continuous_aggregation.linear_pool,
    "quantile_average": continuous_aggregation.quantile_average,
}
LEARNT_POOL = "learnt_pool"
# The state's tail is found through one method's snapshots (``latest.TAIL_METHOD``): one every forecast writes.
assert TAIL_METHOD["binary"] in aggregation.AGGREGATORS and TAIL_METHOD["continuous"] in CONTINUOUS_AGGREGATORS
# The skill-weighted, dispersion-recalibrated pool: the linear pool until questions resolve; better than the
# recency-weighted mean on the Metaculus pros' numeric questions and on synthetic crowds (docs/continuous.md).
CONTINUOUS_HEADLINE_METHOD = LEARNT_POOL


def headline_method(question: Question) -> str:
    """The method readers see as "the community prediction" on this question."""
    return CONTINUOUS_HEADLINE_METHOD if question.is_continuous else HEADLINE_METHOD


def method_names(question: Question) -> list[str]:
    if question.is_continuous:
        return [*CONTINUOUS_AGGREGATORS, LEARNT_POOL]
    return list(aggregation.AGGREGATORS)


def _latest_fit(method: str) -> dict:
    fit = AggregatorFit.objects.filter(method=method).order_by("-fitted_at", "-id").first()
    return {**fit.parameters, "fit": fit.pk} if fit else {}


def aggregator_parameters(*, continuous: bool | None = None) -> dict[str, dict]:
    """The latest fitted parameters of every method that learns some: the extremizing factor (yes/no and
    multiple choice), the learnt pool's records and factor (numeric and date; ``continuous``: only these)."""
    parameters: dict[str, dict] = {}
    if continuous is not True:
        for name, aggregator in aggregation.AGGREGATORS.items():
            if aggregator.parameters:
                fit = AggregatorFit.objects.filter(method=name).order_by("-fitted_at", "-id").first()
                parameters[name] = dict(fit.parameters) if fit else {}
    if continuous is not False:
        parameters[LEARNT_POOL] = _latest_fit(LEARNT_POOL)
    return parameters


def _learnt_pool(question: Question, latest: LatestForecasts, fit: dict) -> np.ndarray:
    records = fit.get("records", {})
    weights = continuous_learnt.pool_weights([records.get(str(f), 0.0) for f in latest.forecaster_ids.tolist()])
    return continuous_learnt.learnt_pool(
        latest.probabilities, question.scale, weights=weights, factor=fit.get("factor", 1.0)
    )


def _aggregate_all(question: Question, latest: LatestForecasts, parameters: dict[str, dict]) -> dict[str, np.ndarray]:
    if question.is_continuous:
        values = {name: method(latest.probabilities) for name, method in CONTINUOUS_AGGREGATORS.items()}
        return values | {LEARNT_POOL: _learnt_pool(question, latest, parameters.get(LEARNT_POOL, {}))}
    return {
        name: aggregator(latest.probabilities, **parameters.get(name, {}))
        for name, aggregator in aggregation.AGGREGATORS.items()
    }


def _snapshot_parameters(parameters: dict) -> dict:
    """What a snapshot keeps of a method's parameters: the learnt pool's factor and fit, not every record."""
    return {key: value for key, value in parameters.items() if key != "records"}


def _snapshots(
    question: Question, prediction: Prediction, latest: LatestForecasts, parameters: dict[str, dict]
) -> list[AggregateSnapshot]:
    values = _aggregate_all(question, latest, parameters)
    return [
        AggregateSnapshot(
            question=question,
            method=name,
            at=prediction.made_at,
            probabilities=[round(float(x), 6) for x in vector],
            forecasters=len(latest.forecaster_ids),
            prediction=prediction,
            parameters=_snapshot_parameters(parameters.get(name, {})),
        )
        for name, vector in values.items()
    ]


def aggregates_update_for_prediction(*, question: Question, prediction: Prediction) -> list[AggregateSnapshot]:
    """Fold one new forecast into the question's aggregates; the caller holds the question's row lock.

    The packed arrays are written back once every ``CHECKPOINT_EVERY`` forecasts (``latest``): in between,
    the forecasts since the last write are read through their snapshots (a few rows), not the arrays written.
    """
    state, created = AggregateState.objects.get_or_create(
        question=question, defaults={"outcomes": question_outcomes(question)}
    )
    latest, tail = LatestForecasts.load_with_tail(state)
    latest = latest.with_forecast(
        prediction.forecaster_id, prediction.made_at.timestamp(), prediction_vector(prediction)
    )
    if created or tail + 1 >= CHECKPOINT_EVERY:
        latest.store(state)
        state.last_prediction = prediction
        state.save()
    if not question.is_continuous:  # the Bayesian model reads probabilities
        bayes_aggregate_schedule(state=state)
    parameters = aggregator_parameters(continuous=question.is_continuous)
    return AggregateSnapshot.objects.bulk_create(_snapshots(question, prediction, latest, parameters))


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
    return _aggregate_all(question, latest, aggregator_parameters(continuous=question.is_continuous))


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
    # the checkpoint is the newest forecast by id (imports may hold ids out of time order)
    state.last_prediction_id = (
        Prediction.objects.filter(question=question).order_by("-id").values_list("id", flat=True).first()
    )
    state.save()
    if last is None:
        return []
    AggregateSnapshot.objects.filter(question=question, prediction=last).delete()
    parameters = aggregator_parameters(continuous=question.is_continuous)
    return AggregateSnapshot.objects.bulk_create(_snapshots(question, last, latest, parameters))


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
        outcomes = question_outcomes(question, options=option_counts.get(question.pk, 0))
        predictions = by_question[question.pk]
        latest, question_snapshots = _replay(question, predictions, outcomes, parameters)
        checkpoint = max(predictions, key=lambda p: p.pk) if predictions else None  # the newest by id
        state = AggregateState(question=question, outcomes=outcomes, last_prediction=checkpoint)
        latest.store(state)
        states.append(state)
        snapshots.extend(question_snapshots)
    AggregateState.objects.bulk_create(states, batch_size=500)
    AggregateSnapshot.objects.bulk_create(snapshots, batch_size=2000)
    return len(snapshots)


def aggregates_current(*, question: Question) -> dict[str, AggregateSnapshot]:
    """The latest snapshot of every method, by method name (empty before the first forecast).

    Every method's snapshot is written for each forecast, so they are those of the forecast behind the
    newest headline snapshot: two index lookups, where a MAX per method read the whole history.
    """
    newest = (
        AggregateSnapshot.objects.filter(question=question, method=headline_method(question))
        .order_by("-at", "-id")
        .values("prediction_id")[:1]
    )
    snapshots = AggregateSnapshot.objects.filter(
        question=question, method__in=method_names(question), prediction_id=Subquery(newest)
    )
    by_method = {s.method: s for s in snapshots}
    return {name: by_method[name] for name in method_names(question) if name in by_method}


def aggregate_history(*, question: Question, method: str | None = None) -> list[AggregateSnapshot]:
    method = method or headline_method(question)
    return list(AggregateSnapshot.objects.filter(question=question, method=method).order_by("at", "id"))


@dataclass(frozen=True)
class CommunityForecast:
    forecasters: int
    probabilities: list[float] | None  # one per outcome: [P(no), P(yes)], one per option, or the CDF
    method: str = HEADLINE_METHOD

    @property
    def probability_yes(self) -> float | None:
        return None if self.probabilities is None else self.probabilities[-1]


def community_forecast(*, question: Question) -> CommunityForecast:
    """The headline community prediction (recency-weighted median; numeric and date questions: the
    learnt pool of the CDFs) from the stored aggregates."""
    method = headline_method(question)
    snapshot = AggregateSnapshot.objects.filter(question=question, method=method).order_by("-at", "-id").first()
    if snapshot is None:
        return CommunityForecast(forecasters=0, probabilities=None, method=method)
    return CommunityForecast(
        forecasters=snapshot.forecasters, probabilities=list(snapshot.probabilities), method=method
    )


@dataclass(frozen=True)
class _ResolvedContinuous:
    """A resolved numeric or date question as ``continuous.learnt`` reads it."""

    question_id: str
    scale: object
    position: float
    forecaster_ids: np.ndarray
    cdfs: np.ndarray


@transaction.atomic
def aggregator_fits_refresh(*, now: dt.datetime | None = None) -> list[AggregatorFit]:
    """Refit learnt parameters on every resolved question: the extremizing factor (yes/no and multiple
    choice) and the learnt pool (numeric and date).

    Each question contributes its forecasters' latest forecasts at resolution (two or more
    forecasters). With fewer than ``MIN_QUESTIONS_TO_FIT`` such questions the factor stays at
    its neutral default. Reads every resolved forecast in one query.
    """
    resolutions = {
        r.question_id: r
        for r in Resolution.objects.filter(retracted_at__isnull=True, question__status=Question.Status.RESOLVED)
        .exclude(outcome=Resolution.Outcome.ANNULLED)
        .select_related("option", "question")
    }
    latest: dict[int, dict[int, Prediction]] = defaultdict(dict)
    forecasts = Prediction.objects.filter(question_id__in=list(resolutions)).order_by("question_id", "made_at", "id")
    for prediction in forecasts.iterator(chunk_size=5000):
        if prediction.made_at <= resolutions[prediction.question_id].resolved_at:
            latest[prediction.question_id][prediction.forecaster_id] = prediction
    standing_by_question = {q: standing for q, standing in latest.items() if len(standing) >= 2}
    statistics, outcomes, continuous = [], [], []
    for question_id, standing in standing_by_question.items():
        resolution = resolutions[question_id]
        if resolution.question.is_continuous:
            continuous.append(resolution)
            continue
        matrix = np.vstack([prediction_vector(p) for p in standing.values()])
        statistics.append(aggregation.mean_log_probabilities(matrix))
        outcomes.append(resolution.outcome_index())
    if len(statistics) >= MIN_QUESTIONS_TO_FIT:
        factor = aggregation.fit_extremizing_factor(statistics, outcomes)
    else:
        factor = aggregation.DEFAULT_EXTREMIZING_FACTOR
    at = {"fitted_at": now} if now else {}
    extremized = AggregatorFit.objects.create(
        method="extremized_logodds", parameters={"factor": round(factor, 6)}, questions_used=len(statistics), **at
    )
    return [extremized, _learnt_pool_fit(continuous, standing_by_question, at)]


def _learnt_pool_fit(
    resolutions: list[Resolution], standing_by_question: dict[int, dict[int, Prediction]], at: dict
) -> AggregatorFit:
    """Replay the resolved numeric and date questions in the order they resolved, as the evaluation does:
    each question's pool with the skill records of the questions resolved before it (out of sample), then
    its forecasters' CRPS joins the records; the dispersion factor is fitted on those pools at the end."""
    records = continuous_learnt.SkillRecords()
    pools, positions = [], []
    for resolution in sorted(resolutions, key=lambda r: (r.resolved_at, r.question_id)):
        standing = standing_by_question[resolution.question_id]
        question = _ResolvedContinuous(
            question_id=str(resolution.question_id),
            scale=resolution.question.scale,
            position=resolution.outcome_position(),
            forecaster_ids=np.array(list(standing), dtype=np.int64),
            cdfs=np.vstack([prediction_vector(p) for p in standing.values()]),
        )
        pools.append(continuous_aggregation.linear_pool(question.cdfs, records.weights(question.forecaster_ids)))
        positions.append(question.position)
        records.add(list(question.forecaster_ids), continuous_scoring.crps(question.cdfs, question.position))
    factor = continuous_learnt.fit_dispersion(np.array(pools).reshape(-1, continuous_learnt.UNIT_GRID.size), positions)
    known = {str(forecaster): round(record, 6) for forecaster, record in records.known().items()}
    return AggregatorFit.objects.create(
        method=LEARNT_POOL,
        parameters={"factor": round(factor, 6), "records": known},
        questions_used=len(pools),
        **at,
    )
