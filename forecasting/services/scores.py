"""Scores, leaderboards and track records, recomputed from the database."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Sum
from django.utils import timezone

from .. import scoring
from ..continuous import scoring as continuous_scoring
from ..models import Article, Prediction, Question, QuestionEvent, Resolution, Score
from ..signals import question_scored
from .questions import active_resolution

SCORE_QUANTUM = Decimal("0.000001")
COPY_MIN_ROWS = 800  # score rows (8 a forecaster) from which they are written with a COPY
Status = Question.Status


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(SCORE_QUANTUM)


def _forecasting_ended_at(
    question: Question, events: list[QuestionEvent], resolutions: list[Resolution]
) -> dt.datetime:
    """When forecasts stopped being taken: the scheduled close, or earlier if an editor closed or resolved early.

    That is the last time the question left ``open`` (a manual close, a resolution or an
    annulment), read from the audit log; without such an event (imported questions), the first
    resolution's time. It does not move when a question is un-resolved and resolved again, so
    re-resolving with the same outcome reproduces the same scores. ``events`` and
    ``resolutions`` are the question's, in any order (retracted resolutions included).
    """
    left_open = [e.created_at for e in events if e.from_status == Status.OPEN and e.to_status != Status.OPEN]
    if left_open:
        return min(max(left_open), question.closes_at)
    if resolutions:
        return min(min(r.resolved_at for r in resolutions), question.closes_at)
    return question.closes_at


@dataclass(frozen=True, slots=True)
class _Forecast:
    """What scoring reads of a forecast (a values row: no model instance for each of 20,000 forecasts)."""

    pk: int
    forecaster_id: int
    made_at: dt.datetime
    vector: list[float]


def _vector(probability, option_probabilities, cdf) -> list[float]:
    """``Prediction.probability_vector`` of the stored columns."""
    if probability is not None:
        p = float(probability)
        return [1.0 - p, p]
    if cdf is not None:
        return [float(x) for x in cdf]
    return [float(x) for x in option_probabilities]


_FORECAST_COLUMNS = ("question_id", "id", "forecaster_id", "made_at", "probability", "option_probabilities", "cdf")


def _read_forecasts(predictions) -> dict[int, list[_Forecast]]:
    """The forecasts of a Prediction queryset by question, each question's in (made_at, id) order."""
    by_question: dict[int, list[_Forecast]] = defaultdict(list)
    rows = predictions.order_by("question_id", "made_at", "id").values_list(*_FORECAST_COLUMNS)
    for question_id, pk, forecaster_id, made_at, probability, options, cdf in rows:
        by_question[question_id].append(_Forecast(pk, forecaster_id, made_at, _vector(probability, options, cdf)))
    return by_question


# (forecaster id, prediction id, kind, method, value, coverage): one Score row of a question and resolution
ScoreRow = tuple[int, int, str, str, Decimal, Decimal]


def _score_rows(
    question: Question, resolution: Resolution, predictions: list[_Forecast], ended_at: dt.datetime
) -> list[ScoreRow]:
    """Every forecaster's spot and time-averaged scores; ``predictions`` in (made_at, id) order.

    The period runs from ``opens_at`` to the scheduled close ``closes_at``; forecasts stand until
    ``ended_at`` (``_forecasting_ended_at``), and the spot score is that of the forecast standing then.
    """
    # A forecast made at or after the end never stood (imports can hold such rows).
    predictions = [p for p in predictions if p.made_at <= ended_at]
    if not predictions:
        return []
    forecaster_ids = sorted({p.forecaster_id for p in predictions})
    index_of = {forecaster_id: i for i, forecaster_id in enumerate(forecaster_ids)}
    standing: dict[int, _Forecast] = {}
    for prediction in predictions:
        standing[prediction.forecaster_id] = prediction
    final = [standing[f] for f in forecaster_ids]

    period = {
        "opens_at": question.opens_at.timestamp(),
        "closes_at": question.closes_at.timestamp(),  # the database guarantees closes_at > opens_at
        "ended_at": ended_at.timestamp(),
        "n_forecasters": len(forecaster_ids),
    }
    timeline = (
        [index_of[p.forecaster_id] for p in predictions],
        [p.made_at.timestamp() for p in predictions],
        np.array([p.vector for p in predictions]),
    )
    standing_vectors = np.array([p.vector for p in final])
    if question.is_continuous:  # log score of the density, baseline and peer (Metaculus's), and CRPS
        scale, position = question.scale, resolution.outcome_position()
        averaged = continuous_scoring.time_averaged_scores(*timeline, scale, position, **period)
        spot = continuous_scoring.spot_scores(standing_vectors, scale, position)
        kinds = continuous_scoring.SPOT_SCORES
    else:
        averaged = scoring.time_averaged_scores(*timeline, resolution.outcome_index(), **period)
        spot = scoring.spot_scores(standing_vectors, resolution.outcome_index())
        kinds = scoring.SPOT_SCORES
    coverage = np.clip(np.asarray(averaged["coverage"], dtype=float), 0.0, 1.0).tolist()
    columns = [
        (kind, method, np.asarray(values[kind], dtype=float).tolist())
        for kind in kinds
        for method, values in ((Score.Method.SPOT, spot), (Score.Method.TIME_AVERAGED, averaged))
    ]
    rows = []
    for i, forecaster_id in enumerate(forecaster_ids):
        covered = _decimal(coverage[i])
        prediction_id = final[i].pk
        for kind, method, values in columns:
            value = values[i]
            if math.isnan(value):  # a forecast that never stood (made at the very end)
                continue
            rows.append((forecaster_id, prediction_id, kind, method, _decimal(value), covered))
    return rows


def _score_objects(question: Question, resolution: Resolution, rows: list[ScoreRow]) -> list[Score]:
    return [
        Score(
            question=question,
            forecaster_id=forecaster_id,
            resolution=resolution,
            prediction_id=prediction_id,
            kind=kind,
            method=method,
            value=value,
            coverage=coverage,
        )
        for forecaster_id, prediction_id, kind, method, value, coverage in rows
    ]


_SCORE_LOAD = """CREATE TEMPORARY TABLE IF NOT EXISTS score_load (
    forecaster_id bigint, prediction_id bigint, kind varchar(10), method varchar(14),
    value numeric(14, 6), coverage numeric(7, 6)
) ON COMMIT DELETE ROWS"""
_SCORE_UPSERT = """INSERT INTO forecasting_score
    (question_id, forecaster_id, resolution_id, prediction_id, kind, method, value, coverage, computed_at)
SELECT %s, forecaster_id, %s, prediction_id, kind, method, value, coverage, %s FROM score_load
ON CONFLICT (question_id, forecaster_id, kind, method) DO UPDATE SET
    resolution_id = EXCLUDED.resolution_id, prediction_id = EXCLUDED.prediction_id, value = EXCLUDED.value,
    coverage = EXCLUDED.coverage, computed_at = EXCLUDED.computed_at"""


def _scores_replace(question: Question, resolution: Resolution | None, rows: list[ScoreRow]) -> None:
    """Make the question's Score rows these: upserted on (question, forecaster, kind, method), and the rows of
    forecasters not among them removed. Many rows on PostgreSQL: one COPY into a temporary table and one upsert
    from it (80,000 rows at 10,000 forecasters: the ORM's bulk upsert spends seconds building model instances);
    a few: the ORM's (the temporary table costs three more queries)."""
    if connection.vendor != "postgresql" or len(rows) < COPY_MIN_ROWS:
        Score.objects.filter(question=question).exclude(forecaster_id__in={r[0] for r in rows}).delete()
        Score.objects.bulk_create(
            _score_objects(question, resolution, rows),
            update_conflicts=True,
            unique_fields=["question", "forecaster", "kind", "method"],
            update_fields=["resolution", "prediction", "value", "coverage", "computed_at"],
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_SCORE_LOAD)
        cursor.execute("DELETE FROM score_load")  # rows of an earlier call in this transaction
        with cursor.cursor.copy(
            "COPY score_load (forecaster_id, prediction_id, kind, method, value, coverage) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            "DELETE FROM forecasting_score WHERE question_id = %s"
            " AND forecaster_id NOT IN (SELECT forecaster_id FROM score_load)",
            [question.pk],
        )
        cursor.execute(_SCORE_UPSERT, [question.pk, resolution.pk, timezone.now()])


def _scorable(question: Question, resolution: Resolution | None) -> bool:
    return (
        question.status == Status.RESOLVED
        and resolution is not None
        and resolution.outcome != Resolution.Outcome.ANNULLED
    )


@transaction.atomic
def question_scores_recompute(*, question_id: int) -> int:
    """Make the question's Score rows match its current resolution; returns how many it holds.

    Every forecaster gets the spot and time-averaged Brier, log, baseline and peer scores.
    The scored period runs from ``opens_at`` to the scheduled close; after an early resolution
    or manual close the remaining time counts as no forecast (``scoring.time_averaged_scores``).
    Recomputed from the database every time, so running it twice (or after a
    retried task) leaves the same rows: scores are upserted on (question, forecaster, kind,
    method) and those of a question that is no longer resolved are removed.
    """
    question = Question.objects.select_for_update().get(pk=question_id)
    resolution = active_resolution(question)
    rows: list[ScoreRow] = []
    if _scorable(question, resolution):
        predictions = _read_forecasts(Prediction.objects.filter(question=question))[question.pk]
        ended_at = _forecasting_ended_at(question, list(question.events.all()), list(question.resolutions.all()))
        rows = _score_rows(question, resolution, predictions, ended_at)
    _scores_replace(question, resolution, rows)
    # In the transaction: a receiver's queued work (the notifications) commits with the scores it reads.
    question_scored.send(sender=Question, question_id=question.pk, resolution_id=resolution.pk if resolution else None)
    return len(rows)


@transaction.atomic
def question_scores_recompute_many(*, question_ids: list[int]) -> int:
    """``question_scores_recompute`` for many questions in a few queries (imports); returns rows written."""
    questions = list(Question.objects.select_for_update().filter(pk__in=question_ids).order_by("pk"))
    resolutions = {
        r.question_id: r
        for r in Resolution.objects.filter(question__in=questions, retracted_at__isnull=True).select_related("option")
    }
    by_question = _read_forecasts(Prediction.objects.filter(question__in=questions))
    events: dict[int, list[QuestionEvent]] = defaultdict(list)
    for event in QuestionEvent.objects.filter(question__in=questions, from_status=Status.OPEN):
        events[event.question_id].append(event)
    all_resolutions: dict[int, list[Resolution]] = defaultdict(list)
    for r in Resolution.objects.filter(question__in=questions):
        all_resolutions[r.question_id].append(r)
    rows = []
    for question in questions:
        resolution = resolutions.get(question.pk)
        if _scorable(question, resolution):
            ended_at = _forecasting_ended_at(question, events[question.pk], all_resolutions[question.pk])
            scored = _score_rows(question, resolution, by_question[question.pk], ended_at)
            rows.extend(_score_objects(question, resolution, scored))
    Score.objects.filter(question__in=questions).delete()
    Score.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- leaderboards --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardRow:
    username: str
    questions: int
    mean_peer: float
    total_peer: float
    coverage: float  # question-equivalents: the sum of per-question coverage
    mean_brier: float | None
    rank: int | None = None


@dataclass(frozen=True)
class Leaderboard:
    min_coverage: float
    ranked: list[LeaderboardRow] = field(default_factory=list)
    unranked: list[LeaderboardRow] = field(default_factory=list)


def leaderboard(*, article: Article | None = None, min_coverage: float | None = None) -> Leaderboard:
    """Forecasters ranked by their mean time-averaged peer score over resolved questions.

    Only forecasters whose coverage adds up to at least ``min_coverage`` question-equivalents
    are ranked, so that one lucky forecast cannot top the board; the others are listed apart.
    """
    if min_coverage is None:
        min_coverage = settings.LEADERBOARD_MIN_COVERAGE_ARTICLE if article else settings.LEADERBOARD_MIN_COVERAGE
    scores = Score.objects.filter(method=Score.Method.TIME_AVERAGED, question__status=Status.RESOLVED)
    if article is not None:
        scores = scores.filter(question__article=article)
    peer = {
        row["forecaster__username"]: row
        for row in scores.filter(kind=Score.Kind.PEER)
        .values("forecaster__username")
        .annotate(questions=Count("id"), total=Sum("value"), mean=Avg("value"), coverage=Sum("coverage"))
    }
    brier = dict(
        scores.filter(kind=Score.Kind.BRIER)
        .values("forecaster__username")
        .annotate(mean=Avg("value"))
        .values_list("forecaster__username", "mean")
    )
    rows = [
        LeaderboardRow(
            username=username,
            questions=row["questions"],
            mean_peer=float(row["mean"]),
            total_peer=float(row["total"]),
            coverage=float(row["coverage"]),
            mean_brier=float(brier[username]) if username in brier else None,
        )
        for username, row in peer.items()
    ]
    rows.sort(key=lambda r: (-r.mean_peer, -r.coverage, r.username))
    ranked = [r for r in rows if r.coverage >= min_coverage]
    ranked = [LeaderboardRow(**{**r.__dict__, "rank": i}) for i, r in enumerate(ranked, start=1)]
    return Leaderboard(
        min_coverage=min_coverage, ranked=ranked, unranked=[r for r in rows if r.coverage < min_coverage]
    )


# --- track record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackRecord:
    scores: list[dict]  # one per resolved question: {question, coverage, spot: {kind: v}, time_averaged: {...}}
    calibration: list[dict]
    expected_calibration_error: float | None
    forecasts_scored: int


def forecaster_track_record(*, forecaster) -> TrackRecord:
    """Every score of a forecaster, and their calibration over the forecasts standing at resolution."""
    by_question: dict[int, dict] = {}
    scores = (
        Score.objects.filter(forecaster=forecaster)
        .select_related("question", "question__article", "prediction", "resolution", "resolution__option")
        .order_by("-resolution__resolved_at", "question_id")
    )
    probabilities: list[float] = []
    outcomes: list[int] = []
    for score in scores:
        entry = by_question.setdefault(
            score.question_id,
            {
                "question": score.question,
                "resolution": score.resolution,
                "coverage": float(score.coverage),
                "spot": {},
                "time_averaged": {},
            },
        )
        entry[score.method][score.kind] = float(score.value)
        if score.method == Score.Method.SPOT and score.kind == Score.Kind.BRIER:
            # Calibration: each outcome's probability is a forecast of that outcome happening
            # (for a binary question, just P(YES) against YES).
            vector = score.prediction.probability_vector()
            winner = score.resolution.outcome_index()
            if score.question.is_binary:
                probabilities.append(vector[1])
                outcomes.append(int(winner == 1))
            else:
                probabilities.extend(vector)
                outcomes.extend(int(i == winner) for i in range(len(vector)))
    table = scoring.calibration_table(probabilities, outcomes) if probabilities else []
    ece = scoring.expected_calibration_error(probabilities, outcomes) if probabilities else None
    return TrackRecord(
        scores=list(by_question.values()),
        calibration=table,
        expected_calibration_error=ece,
        forecasts_scored=len(by_question),
    )
