"""The rows of forecasting's own export tables, read from the database in chunks.

Each function takes a ``RowScope`` (the export's questions, high-water mark, forecaster filter
and pseudonyms) and yields tuples in the order of its table's columns (``tables.py``). Rows are
read with ``values_list(...).iterator(chunk_size=...)`` so memory stays flat whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Prefetch

from forecasting.models import CONTINUOUS_TYPES, AggregateSnapshot, Prediction, Question, Resolution, Score

from .schema import DB_CHUNK_ROWS, RowScope

ONE = Decimal(1)


def questions_rows(scope: RowScope) -> Iterator[tuple]:
    active = Prefetch(
        "resolutions",
        queryset=Resolution.objects.filter(retracted_at__isnull=True).select_related("option"),
        to_attr="active_resolutions",
    )
    questions = scope.questions.order_by("pk").select_related("article").prefetch_related("options", active)
    for q in questions.iterator(chunk_size=500):
        outcomes = ["No", "Yes"] if q.is_binary else [] if q.is_continuous else [o.label for o in q.options.all()]
        resolution = q.active_resolutions[0] if q.active_resolutions else None
        index = resolution.outcome_index() if resolution else None
        yield (
            q.pk,
            q.article_id,
            q.article.slug,
            q.article.title,
            q.title,
            q.question_type,
            q.status,
            outcomes,
            q.opens_at,
            q.closes_at,
            resolution.outcome if resolution else None,
            index,
            outcomes[index] if index is not None and index < len(outcomes) else None,
            resolution.resolved_at if resolution else None,
            q.resolution_criteria,
            q.external_id,
            q.range_min,
            q.range_max,
            q.open_lower_bound if q.is_continuous else None,
            q.open_upper_bound if q.is_continuous else None,
            q.zero_point,
            q.unit or None,
            resolution.value if resolution else None,
        )


def forecasts_rows(scope: RowScope) -> Iterator[tuple]:
    fields = ["pk", "question_id", "forecaster_id", "made_at", "probability", "option_probabilities", "cdf"]
    if scope.identities:
        fields.append("forecaster__username")
    rows = (
        scope.of_forecaster(Prediction.objects.filter(question_id__in=scope.question_ids))
        .filter(pk__lte=scope.up_to)
        .order_by("question_id", "made_at", "pk")
        .values_list(*fields)
    )
    key = scope.forecaster_key
    for row in rows.iterator(chunk_size=DB_CHUNK_ROWS):
        pk, question_id, forecaster_id, made_at, p, options, cdf = row[:7]
        vector = [ONE - p, p] if p is not None else [Decimal(x) for x in options] if options is not None else None
        if scope.identities:
            yield pk, question_id, key(forecaster_id), row[7], made_at, p, vector, cdf
        else:
            yield pk, question_id, key(forecaster_id), made_at, p, vector, cdf


def aggregates_rows(scope: RowScope) -> Iterator[tuple]:
    rows = (
        AggregateSnapshot.objects.filter(question_id__in=scope.question_ids, pk__lte=scope.up_to)
        .order_by("question_id", "method", "at", "pk")
        .values_list(
            "pk",
            "question_id",
            "method",
            "at",
            "forecasters",
            "probabilities",
            "low",
            "high",
            "model_run_id",
            "prediction_id",
            "parameters",
            "question__question_type",
        )
    )
    binary = Question.Type.BINARY
    for pk, qid, method, at, n, probabilities, low, high, run, prediction, parameters, qtype in rows.iterator(
        chunk_size=DB_CHUNK_ROWS
    ):
        yes = probabilities[-1] if qtype == binary and probabilities else None
        continuous = qtype in CONTINUOUS_TYPES
        vector, cdf = (None, probabilities) if continuous else (probabilities, None)
        yield pk, qid, method, at, n, yes, vector, low, high, run, prediction, parameters, cdf


def scores_rows(scope: RowScope) -> Iterator[tuple]:
    fields = ["question_id", "forecaster_id", "kind", "method", "value", "coverage", "prediction_id"]
    fields += ["resolution_id", "computed_at"]
    if scope.identities:
        fields.append("forecaster__username")
    rows = (
        scope.of_forecaster(Score.objects.filter(question_id__in=scope.question_ids))
        .order_by("question_id", "forecaster_id", "method", "kind")
        .values_list(*fields)
    )
    key = scope.forecaster_key
    for row in rows.iterator(chunk_size=DB_CHUNK_ROWS):
        head = (row[0], key(row[1]))
        if scope.identities:
            yield (*head, row[9], *row[2:9])
        else:
            yield (*head, *row[2:9])
