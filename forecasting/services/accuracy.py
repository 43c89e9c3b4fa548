"""How good the site's forecasts are: the aggregates' scores and calibration on resolved questions.

An aggregate's forecast of a resolved question is its value just before forecasting ended: the
last ``AggregateSnapshot`` of the method at or before the earlier of the scheduled close and the
resolution, so nothing known after the fact goes in. Read-only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Least

from .. import calibration, scoring
from ..models import AggregateSnapshot, Article, Question, Resolution
from .aggregates import HEADLINE_METHOD
from .bayesian import BAYES_METHOD

MEAN_METHOD = "mean"


@dataclass(frozen=True)
class AggregateMethod:
    key: str
    label: str
    description: str


METHODS = (
    AggregateMethod(HEADLINE_METHOD, "Community prediction", "the recency-weighted median shown on question pages"),
    AggregateMethod(BAYES_METHOD, "Bayesian model", "weighs each forecaster by their track record (yes/no only)"),
    AggregateMethod(MEAN_METHOD, "Simple mean", "the plain average of the latest forecasts"),
)


@dataclass(frozen=True)
class ResolvedQuestion:
    question: Question
    outcome_index: int
    resolved_at: dt.datetime
    aggregates: dict[str, list[float]]  # method -> probabilities at the cut-off (absent: none by then)


def _active_resolution(field: str) -> Subquery:
    active = Resolution.objects.filter(question=OuterRef("pk"), retracted_at__isnull=True).order_by("-resolved_at")
    return Subquery(active.values(field)[:1])


def resolved_questions(*, methods: Iterable[str], questions: QuerySet | None = None) -> list[ResolvedQuestion]:
    """Published questions resolved to an outcome, each with every method's value at its cut-off.

    One query whatever the number of questions: the resolution and each method's snapshot are
    correlated subqueries (the snapshot one walks the ``(question, method, at)`` index).
    """
    methods = list(methods)
    base = Question.objects.all() if questions is None else questions
    rows = (
        base.published()
        .filter(status=Question.Status.RESOLVED)
        .select_related("article")
        .annotate(
            resolved_on=_active_resolution("resolved_at"),
            outcome_kind=_active_resolution("outcome"),
            option_position=_active_resolution("option__position"),
        )
        .filter(outcome_kind__in=[Resolution.Outcome.YES, Resolution.Outcome.NO, Resolution.Outcome.OPTION])
        .annotate(cutoff=Least("closes_at", "resolved_on"))
    )
    for i, method in enumerate(methods):
        latest = AggregateSnapshot.objects.filter(
            question=OuterRef("pk"), method=method, at__lte=OuterRef("cutoff")
        ).order_by("-at", "-id")
        rows = rows.annotate(**{f"aggregate_{i}": Subquery(latest.values("probabilities")[:1])})
    result = []
    for q in rows.order_by("resolved_on", "pk"):
        if q.outcome_kind == Resolution.Outcome.OPTION:
            index = q.option_position
        else:
            index = int(q.outcome_kind == Resolution.Outcome.YES)
        values = {m: getattr(q, f"aggregate_{i}") for i, m in enumerate(methods)}
        result.append(
            ResolvedQuestion(
                question=q,
                outcome_index=index,
                resolved_at=q.resolved_on,
                aggregates={m: [float(x) for x in v] for m, v in values.items() if v},
            )
        )
    return result


def forecast_scores(probabilities: Sequence[float], outcome_index: int) -> tuple[float, float]:
    """(Brier, log) of one forecast, exactly as the forecasters' spot scores are computed."""
    spot = scoring.spot_scores(np.asarray([probabilities], dtype=float), outcome_index)
    return float(spot["brier"][0]), float(spot["log"][0])


def calibration_events(probabilities: Sequence[float], outcome_index: int) -> list[tuple[float, int]]:
    """A forecast as (probability, happened) events: P(YES) for yes/no, every option otherwise."""
    if len(probabilities) == 2:
        return [(float(probabilities[1]), int(outcome_index == 1))]
    return [(float(p), int(i == outcome_index)) for i, p in enumerate(probabilities)]


@dataclass(frozen=True)
class MethodAccuracy:
    method: AggregateMethod
    questions: int
    mean_brier: float | None
    mean_log: float | None
    calibration: list[calibration.ReliabilityBin]
    expected_calibration_error: float | None
    plot: calibration.ReliabilityPlot | None


def method_accuracy(method: AggregateMethod, items: Sequence[ResolvedQuestion]) -> MethodAccuracy:
    """A method's mean scores and calibration over the questions of ``items`` it has a value for."""
    briers, logs, probabilities, outcomes = [], [], [], []
    for item in items:
        vector = item.aggregates.get(method.key)
        if vector is None:
            continue
        brier, log = forecast_scores(vector, item.outcome_index)
        briers.append(brier)
        logs.append(log)
        for p, happened in calibration_events(vector, item.outcome_index):
            probabilities.append(min(max(p, 0.0), 1.0))  # stored rounded: keep float noise in range
            outcomes.append(happened)
    table = calibration.reliability_bins(probabilities, outcomes)
    return MethodAccuracy(
        method=method,
        questions=len(briers),
        mean_brier=sum(briers) / len(briers) if briers else None,
        mean_log=sum(logs) / len(logs) if logs else None,
        calibration=table,
        expected_calibration_error=calibration.expected_calibration_error(table),
        plot=calibration.reliability_plot(table),
    )


@dataclass(frozen=True)
class ArticleAccuracy:
    article: Article
    questions: int
    methods: list[MethodAccuracy]


@dataclass(frozen=True)
class SiteAccuracy:
    questions: int
    overall: list[MethodAccuracy]  # each method on every question it has a value for
    common_questions: int
    common: list[MethodAccuracy]  # each method on the questions every method has a value for
    by_article: list[ArticleAccuracy]


def site_accuracy() -> SiteAccuracy:
    """The aggregates' Brier and log scores and calibration, overall and per article (a fixed number of queries)."""
    items = resolved_questions(methods=[m.key for m in METHODS])
    common = [item for item in items if all(m.key in item.aggregates for m in METHODS)]
    by_article: dict[int, list[ResolvedQuestion]] = defaultdict(list)
    for item in items:
        by_article[item.question.article_id].append(item)
    articles = sorted(
        (group[0].question.article for group in by_article.values()),
        key=lambda a: (-a.published_at.timestamp(), -a.pk),
    )
    return SiteAccuracy(
        questions=len(items),
        overall=[method_accuracy(m, items) for m in METHODS],
        common_questions=len(common),
        common=[method_accuracy(m, common) for m in METHODS],
        by_article=[
            ArticleAccuracy(
                article=a,
                questions=len(by_article[a.pk]),
                methods=[method_accuracy(m, by_article[a.pk]) for m in METHODS],
            )
            for a in articles
        ],
    )
