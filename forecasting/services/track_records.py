"""Track records and public leaderboards, with the privacy rule of defect 8.

The exports key forecasters by pseudonym with their per-question scores; a public page showing a
named reader's per-question scores (or per-reader totals) would let anyone join the two and put a
name on a pseudonym. So the public pages name only readers who chose a public profile
(``ForecasterProfile.is_public``): a private reader's track record is shown to that reader alone,
and leaderboards list them as ``PRIVATE_LABEL``, with no link and no identifier. Read-only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from .. import calibration
from ..models import Article, Question, Score
from .accuracy import calibration_events, forecast_scores, resolved_questions
from .aggregates import HEADLINE_METHOD
from .profiles import is_deleted_username, public_label

# --- track record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionRecord:
    question: Question
    outcome: str
    resolved_at: dt.datetime
    coverage: float
    spot: dict[str, float]  # kind -> value
    time_averaged: dict[str, float]
    community_brier: float | None  # the headline aggregate's Brier just before forecasting ended


@dataclass(frozen=True)
class OverTimePoint:
    record: QuestionRecord
    x: float
    y: float  # this question's Brier
    running_mean: float
    community_running_mean: float | None


@dataclass(frozen=True)
class OverTimePlot:
    width: int
    height: int
    y_max: float
    points: list[OverTimePoint]
    line: str  # SVG polyline of the reader's running mean Brier
    community_line: str  # the community's, on the same questions


@dataclass(frozen=True)
class ForecasterRecord:
    questions: list[QuestionRecord]  # newest resolution first
    calibration: list[calibration.ReliabilityBin]
    expected_calibration_error: float | None
    plot: calibration.ReliabilityPlot | None
    over_time: OverTimePlot | None
    compared_questions: int  # questions with both a Brier of the reader's and of the community
    mean_brier: float | None  # the reader's, on those questions
    community_mean_brier: float | None


def _over_time(records: list[QuestionRecord], *, width: int = 560, height: int = 160) -> OverTimePlot | None:
    """Running mean Brier of the reader and of the community, question after question (oldest first)."""
    chronological = [r for r in reversed(records) if "brier" in r.spot]
    if len(chronological) < 2:
        return None
    values = [r.spot["brier"] for r in chronological] + [r.community_brier or 0.0 for r in chronological]
    y_max = max(0.5, -(-max(values) * 4 // 1) / 4)  # round up to a quarter, at least 0.5

    def y(v: float) -> float:
        return round(height - v / y_max * height, 1)

    points, line, community_line = [], [], []
    total, community_total, community_n = 0.0, 0.0, 0
    step = width / (len(chronological) - 1)
    for i, r in enumerate(chronological):
        total += r.spot["brier"]
        if r.community_brier is not None:
            community_total += r.community_brier
            community_n += 1
        x = round(i * step, 1)
        running = total / (i + 1)
        community_running = community_total / community_n if community_n else None
        points.append(OverTimePoint(r, x, y(r.spot["brier"]), running, community_running))
        line.append(f"{x},{y(running)}")
        if community_running is not None:
            community_line.append(f"{x},{y(community_running)}")
    return OverTimePlot(width, height, y_max, points, " ".join(line), " ".join(community_line))


def forecaster_record(*, forecaster) -> ForecasterRecord:
    """A forecaster's scores per resolved question, calibration, scores over time and the community beside them.

    Two queries whatever the number of questions. Callers decide who may see it
    (``profiles.may_see_track_record``).
    """
    scores = (
        Score.objects.filter(forecaster=forecaster, question__published_at__isnull=False)
        .select_related("question", "question__article", "prediction", "resolution", "resolution__option")
        .order_by("-resolution__resolved_at", "question_id")
    )
    entries: dict[int, dict] = {}
    probabilities: list[float] = []
    outcomes: list[int] = []
    for score in scores:
        entry = entries.setdefault(
            score.question_id,
            {"score": score, "spot": {}, "time_averaged": {}},
        )
        entry[score.method][score.kind] = float(score.value)
        if score.method == Score.Method.SPOT and score.kind == Score.Kind.BRIER:
            for p, happened in calibration_events(
                score.prediction.probability_vector(), score.resolution.outcome_index()
            ):
                probabilities.append(p)
                outcomes.append(happened)
    community = {
        item.question.pk: forecast_scores(item.aggregates[HEADLINE_METHOD], item.outcome_index)[0]
        for item in resolved_questions(methods=[HEADLINE_METHOD], questions=Question.objects.filter(pk__in=entries))
        if HEADLINE_METHOD in item.aggregates
    }
    records = [
        QuestionRecord(
            question=e["score"].question,
            outcome=e["score"].resolution.describe(),
            resolved_at=e["score"].resolution.resolved_at,
            coverage=float(e["score"].coverage),
            spot=e["spot"],
            time_averaged=e["time_averaged"],
            community_brier=community.get(question_id),
        )
        for question_id, e in entries.items()
    ]
    compared = [r for r in records if r.community_brier is not None and "brier" in r.spot]
    table = calibration.reliability_bins(probabilities, outcomes)
    return ForecasterRecord(
        questions=records,
        calibration=table,
        expected_calibration_error=calibration.expected_calibration_error(table),
        plot=calibration.reliability_plot(table),
        over_time=_over_time(records),
        compared_questions=len(compared),
        mean_brier=sum(r.spot["brier"] for r in compared) / len(compared) if compared else None,
        community_mean_brier=sum(r.community_brier for r in compared) / len(compared) if compared else None,
    )


# --- public leaderboards -------------------------------------------------------------------------

PERIODS = {"all": None, "30d": 30, "90d": 90, "365d": 365}
PERIOD_LABELS = {"all": "All time", "30d": "Last 30 days", "90d": "Last 90 days", "365d": "Last 12 months"}


def leaderboard_period(value: str | None) -> str:
    """The period of a leaderboard from a query parameter (empty: all time); a ValidationError otherwise."""
    value = value or "all"
    if value not in PERIODS:
        raise ValidationError(f"Unknown period “{value}”: choose one of {', '.join(PERIODS)}.")
    return value


@dataclass(frozen=True)
class BoardRow:
    label: str  # a public reader's (or the viewer's) display name or username, else PRIVATE_LABEL or DELETED_LABEL
    username: str | None  # set only when the row may link to a track record
    is_you: bool
    questions: int
    mean_peer: float
    total_peer: float
    coverage: float
    mean_brier: float | None
    rank: int | None = None


@dataclass(frozen=True)
class PublicLeaderboard:
    min_coverage: float
    period: str
    article: Article | None
    ranked: list[BoardRow] = field(default_factory=list)
    unranked: list[BoardRow] = field(default_factory=list)
    private_rows: int = 0


def public_leaderboard(
    *,
    article: Article | None = None,
    period: str = "all",
    viewer=None,
    min_coverage: float | None = None,
    now: dt.datetime | None = None,
) -> PublicLeaderboard:
    """Forecasters ranked by mean time-averaged peer score, as the public may see them.

    Only questions resolved within ``period`` count (by their resolution time). A forecaster is
    ranked once their coverage adds up to ``min_coverage`` question-equivalents. Private readers
    keep their place but are listed as ``PRIVATE_LABEL`` (the viewer sees their own name). One
    query whatever the number of forecasters.
    """
    period = leaderboard_period(period)
    if min_coverage is None:
        min_coverage = settings.LEADERBOARD_MIN_COVERAGE_ARTICLE if article else settings.LEADERBOARD_MIN_COVERAGE
    scores = Score.objects.filter(
        method=Score.Method.TIME_AVERAGED,
        kind__in=[Score.Kind.PEER, Score.Kind.BRIER],
        question__status=Question.Status.RESOLVED,
        question__published_at__isnull=False,
    )
    if article is not None:
        scores = scores.filter(question__article=article)
    if PERIODS[period] is not None:
        since = (now or timezone.now()) - dt.timedelta(days=PERIODS[period])
        scores = scores.filter(resolution__resolved_at__gte=since)
    peer = Q(kind=Score.Kind.PEER)
    aggregated = (
        scores.values(
            "forecaster_id",
            "forecaster__username",
            "forecaster__forecaster_profile__is_public",
            "forecaster__forecaster_profile__display_name",
        )
        .annotate(
            questions=Count("id", filter=peer),
            total=Sum("value", filter=peer),
            mean=Avg("value", filter=peer),
            coverage=Sum("coverage", filter=peer),
            brier=Avg("value", filter=Q(kind=Score.Kind.BRIER)),
        )
        .filter(questions__gt=0)
        .order_by()
    )
    viewer_id = viewer.pk if viewer is not None and viewer.is_authenticated else None
    rows = []
    for row in aggregated:
        is_you = row["forecaster_id"] == viewer_id
        username = row["forecaster__username"]
        shown = (is_you or bool(row["forecaster__forecaster_profile__is_public"])) and not is_deleted_username(username)
        rows.append(
            (
                row["forecaster_id"],
                BoardRow(
                    label=public_label(
                        username=username,
                        display_name=row["forecaster__forecaster_profile__display_name"] or "",
                        shown=shown,
                    ),
                    username=username if shown else None,
                    is_you=is_you,
                    questions=row["questions"],
                    mean_peer=float(row["mean"]),
                    total_peer=float(row["total"]),
                    coverage=float(row["coverage"]),
                    mean_brier=float(row["brier"]) if row["brier"] is not None else None,
                ),
            )
        )
    # Ties break on the user id, not the name: an order by name would hint at private readers' names.
    rows.sort(key=lambda pair: (-pair[1].mean_peer, -pair[1].coverage, pair[0]))
    ordered = [r for _, r in rows]
    ranked = [r for r in ordered if r.coverage >= min_coverage]
    ranked = [BoardRow(**{**r.__dict__, "rank": i}) for i, r in enumerate(ranked, start=1)]
    return PublicLeaderboard(
        min_coverage=min_coverage,
        period=period,
        article=article,
        ranked=ranked,
        unranked=[r for r in ordered if r.coverage < min_coverage],
        private_rows=sum(1 for r in ordered if r.username is None),
    )
