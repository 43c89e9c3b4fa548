"""The events readers and editors hear of: each turns the database's state into notification drafts.

Every function here is idempotent (the drafts' keys dedupe them: see ``core.notifications_create``),
safe to run late or twice, and batched: the recipients are read in chunks of ``CHUNK`` (one query
each, plus one for their preferences and one INSERT), so a question with 10,000 forecasters costs a
few dozen queries, not 10,000. Each returns how many drafts it offered.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from comments.models import Comment
from forecasting import services as forecasting
from forecasting.models import AggregateSnapshot, Prediction, Question, Resolution, Score

from ..models import Kind
from .core import Draft, id_chunks, notifications_create

CHUNK = 1000
DIGEST_QUESTIONS_LISTED = 30
EXCERPT_LENGTH = 280
RESOLVE_PERMISSION = "forecasting.resolve_question"
Status = Question.Status

SCORE_HINTS = {
    Score.Kind.BRIER: "lower is better",
    Score.Kind.LOG: "closer to 0 is better",
    Score.Kind.BASELINE: "higher is better",
    Score.Kind.PEER: "above 0: better than the crowd",
}


def _percent(value) -> str:
    return f"{float(value) * 100:.0f}%"


def _when(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%-d %b %Y %H:%M} UTC"


def _forecast_text(probability, options, labels: list[str]) -> str:
    if probability is not None:
        return f"{_percent(probability)} yes"
    return ", ".join(f"{label} {_percent(p)}" for label, p in zip(labels, options or [], strict=False))


def _labels(question: Question) -> list[str]:
    return [] if question.is_binary else list(question.options.order_by("position").values_list("label", flat=True))


def _forecasters(question_id: int):
    return Prediction.objects.filter(question_id=question_id)


# --- 1. a question you forecast resolved (or was annulled) -----------------------------------------


# Each score kind as the body lists it: (value, label, hint, in points)
_KIND_LINES = [
    (kind.value, kind.label, SCORE_HINTS[kind], kind in (Score.Kind.BASELINE, Score.Kind.PEER))
    for kind in Score.Kind
    if kind in SCORE_HINTS
]


def _resolved_body(question: Question, resolution: Resolution, scores: dict | None, labels: list[str]) -> str:
    lines = [f"It resolved as “{resolution.describe()}”."]
    if not scores:
        lines.append("Your forecasts came after forecasting ended, so they are not scored.")
        return "\n".join(lines)
    forecast = scores.pop("forecast")
    lines.append(f"Your forecast standing at resolution: {_forecast_text(*forecast, labels)}.")
    lines.append("Your scores at resolution:")
    for kind, label, hint, points in _KIND_LINES:
        if kind in scores:
            value = float(scores[kind])
            shown = f"{value:+.1f}" if points else f"{value:.4f}"
            lines.append(f"- {label}: {shown} ({hint})")
    lines.append("Your time-averaged scores are on your track record.")
    return "\n".join(lines)


def resolution_notify(*, question_id: int) -> int:
    """Tell each forecaster of the question its outcome and their scores, once per resolution.

    Run after every score recompute (``forecasting.signals.question_scored``). The key is the active
    resolution's id: recomputing again notifies nobody twice, while un-resolving and resolving again
    makes a new resolution, which is news. If the scores are not yet those of the active resolution
    (this task ran late, after an un-resolve and a re-resolve whose recompute is still to come), it
    does nothing: that recompute queues it again.
    """
    question = Question.objects.filter(pk=question_id, published_at__isnull=False).first()
    if question is None or question.status not in (Status.RESOLVED, Status.ANNULLED):
        return 0
    resolution = forecasting.active_resolution(question)
    if resolution is None:
        return 0
    annulled = resolution.outcome == Resolution.Outcome.ANNULLED
    if not annulled and not Score.objects.filter(question=question, resolution=resolution).exists():
        return 0
    key, url = f"resolved:{resolution.pk}", question.get_absolute_url()
    labels = _labels(question)
    offered = 0
    for chunk in id_chunks(_forecasters(question.pk), "forecaster_id", CHUNK):
        if annulled:
            title = f"Annulled: {question.title}"
            body = "This question was annulled: it will not resolve, and nobody is scored on it."
            drafts = [Draft(f, Kind.RESOLVED, key, title, url, body, question.pk) for f in chunk]
        else:
            scores: dict[int, dict] = defaultdict(dict)
            # the chunk is a range of ids in ascending order: a range, not a list of 1,000 ids
            rows = Score.objects.filter(
                question=question,
                resolution=resolution,
                method=Score.Method.SPOT,
                forecaster_id__gte=chunk[0],
                forecaster_id__lte=chunk[-1],
            ).values_list(
                "forecaster_id", "kind", "value", "prediction__probability", "prediction__option_probabilities"
            )
            for forecaster_id, kind, value, probability, options in rows:
                scores[forecaster_id][kind] = value
                scores[forecaster_id]["forecast"] = (probability, options)
            title = f"Resolved: {question.title}"
            drafts = [
                Draft(
                    f,
                    Kind.RESOLVED,
                    key,
                    title,
                    url,
                    _resolved_body(question, resolution, scores.get(f), labels),
                    question.pk,
                )
                for f in chunk
            ]
        offered += notifications_create(drafts=drafts)
    return offered


# --- 2. a question you forecast closes soon ----------------------------------------------------------


def closing_soon_notify(*, now: dt.datetime | None = None) -> int:
    """Forecasters of each open question that closes within ``NOTIFY_CLOSING_SOON_HOURS``, once per question."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(hours=settings.NOTIFY_CLOSING_SOON_HOURS)
    questions = Question.objects.filter(
        status=Status.OPEN, published_at__isnull=False, closes_at__gt=now, closes_at__lte=horizon
    ).only("pk", "title", "closes_at")
    offered = 0
    for question in questions:
        title = f"Closing soon: {question.title}"
        body = f"Forecasts close at {_when(question.closes_at)}. Last chance to update yours."
        url = question.get_absolute_url()
        for chunk in id_chunks(_forecasters(question.pk), "forecaster_id", CHUNK):
            offered += notifications_create(
                drafts=[
                    Draft(f, Kind.CLOSING_SOON, f"closing:{question.pk}", title, url, body, question.pk) for f in chunk
                ],
                now=now,
            )
    return offered


# --- 3. the community moved away from your forecast ---------------------------------------------------


def _latest_forecasts(questions: Q):
    """Each forecaster's latest forecast on the questions (one correlated subquery on the latest-forecast index)."""
    newest = Prediction.objects.filter(question=OuterRef("question"), forecaster=OuterRef("forecaster")).order_by(
        "-made_at", "-id"
    )
    return Prediction.objects.filter(questions).filter(pk=Subquery(newest.values("pk")[:1]))


def community_moved_notify(*, now: dt.datetime | None = None) -> int:
    """Readers whose latest forecast on an open yes/no question is more than ``NOTIFY_COMMUNITY_MOVE_POINTS``
    from the headline community prediction (the question page's number), once per such forecast.

    Only if the community number changed after the forecast (a newer snapshot): a reader who forecast
    far from the crowd is not told so at once, only when others forecast after them.
    """
    now = now or timezone.now()
    gap = Decimal(str(settings.NOTIFY_COMMUNITY_MOVE_POINTS / 100))
    newest_snapshot = AggregateSnapshot.objects.filter(
        question=OuterRef("pk"), method=forecasting.HEADLINE_METHOD
    ).order_by("-at", "-id")
    questions = list(
        Question.objects.filter(
            status=Status.OPEN, question_type=Question.Type.BINARY, published_at__isnull=False, closes_at__gt=now
        )
        .annotate(snapshot_id=Subquery(newest_snapshot.values("pk")[:1]))
        .filter(snapshot_id__isnull=False)
        .only("pk", "title")
    )
    snapshots = AggregateSnapshot.objects.in_bulk([q.snapshot_id for q in questions])
    offered = 0
    for question in questions:
        snapshot = snapshots[question.snapshot_id]
        community = Decimal(str(snapshot.probability_yes))
        far = _latest_forecasts(Q(question=question)).filter(
            Q(probability__lt=community - gap) | Q(probability__gt=community + gap), made_at__lt=snapshot.at
        )
        title = f"The community moved: {question.title}"
        url = question.get_absolute_url()
        for chunk in id_chunks(far, "pk", CHUNK):
            rows = Prediction.objects.filter(pk__in=chunk).values_list("pk", "forecaster_id", "probability", "made_at")
            drafts = [
                Draft(
                    forecaster_id,
                    Kind.COMMUNITY_MOVED,
                    f"moved:{pk}",
                    title,
                    url,
                    f"The community now says {_percent(community)} yes; you said {_percent(probability)} "
                    f"on {_when(made_at)}. Still your view?",
                    question.pk,
                )
                for pk, forecaster_id, probability, made_at in rows
            ]
            offered += notifications_create(drafts=drafts, now=now)
    return offered


# --- 4. a reply to your comment ------------------------------------------------------------------------


def comment_reply_notify(*, comment_id: int) -> int:
    """Tell a comment's author of a reply: not their own, not hidden, on a question they may still see."""
    reply = Comment.objects.select_related("parent", "author", "question").filter(pk=comment_id).first()
    if reply is None or reply.parent is None or reply.is_hidden or reply.parent.is_hidden:
        return 0
    recipient = reply.parent.author
    if recipient.pk == reply.author_id:
        return 0
    if not Question.objects.visible_to(recipient).filter(pk=reply.question_id).exists():
        return 0
    excerpt = reply.body if len(reply.body) <= EXCERPT_LENGTH else reply.body[: EXCERPT_LENGTH - 1].rstrip() + "…"
    draft = Draft(
        recipient.pk,
        Kind.COMMENT_REPLY,
        f"reply:{reply.pk}",
        f"{reply.author.username} replied to your comment on “{reply.question.title}”",
        f"{reply.question.get_absolute_url()}#{reply.anchor}",
        excerpt,
        reply.question_id,
    )
    return notifications_create(drafts=[draft])


# --- 5. editors: questions awaiting resolution (a daily digest) -----------------------------------------


def overdue_resolutions_notify(*, now: dt.datetime | None = None) -> int:
    """One digest per editor (users who may resolve) and day listing the questions past their close
    date and not resolved: closed ones, and open ones whose close date passed."""
    now = now or timezone.now()
    overdue = Question.objects.filter(published_at__isnull=False).filter(
        Q(status=Status.CLOSED) | Q(status=Status.OPEN, closes_at__lte=now)
    )
    count = overdue.count()
    if not count:
        return 0
    listed = list(overdue.order_by("closes_at", "id").only("pk", "title", "closes_at")[:DIGEST_QUESTIONS_LISTED])
    lines = [f"- {q.title} (closed {_when(q.closes_at)}): {settings.SITE_URL}{q.get_absolute_url()}" for q in listed]
    if count > len(listed):
        lines.append(f"… and {count - len(listed)} more on the editor desk.")
    title = f"{count} question{'s' if count != 1 else ''} awaiting resolution"
    body = "Past their close date and not yet resolved:\n" + "\n".join(lines)
    key = f"overdue:{timezone.localdate(now).isoformat()}"
    editors = get_user_model().objects.with_perm(
        RESOLVE_PERMISSION, backend="django.contrib.auth.backends.ModelBackend"
    )
    offered = 0
    for chunk in id_chunks(editors, "pk", CHUNK):
        drafts = [Draft(e, Kind.OVERDUE_DIGEST, key, title, reverse("editor_dashboard"), body) for e in chunk]
        offered += notifications_create(drafts=drafts, now=now)
    return offered


# --- 6. your forecast is getting old ------------------------------------------------------------------


def stale_forecasts_notify(*, now: dt.datetime | None = None) -> int:
    """Readers whose latest forecast on an open question is older than ``NOTIFY_STALE_FORECAST_DAYS``,
    once per such forecast (forecasting again makes a new one, which may go stale in its turn)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.NOTIFY_STALE_FORECAST_DAYS)
    stale = _latest_forecasts(
        Q(question__status=Status.OPEN, question__published_at__isnull=False, question__closes_at__gt=now)
    ).filter(made_at__lt=cutoff)
    offered = 0
    for chunk in id_chunks(stale, "pk", CHUNK):
        rows = Prediction.objects.filter(pk__in=chunk).values_list(
            "pk", "forecaster_id", "question_id", "question__title", "made_at"
        )
        drafts = [
            Draft(
                forecaster_id,
                Kind.STALE_FORECAST,
                f"stale:{pk}",
                f"Your forecast is {(now - made_at).days} days old: {title}",
                reverse("question_detail", kwargs={"pk": question_id}),
                f"You last forecast this question on {_when(made_at)}. Has anything changed since?",
                question_id,
            )
            for pk, forecaster_id, question_id, title, made_at in rows
        ]
        offered += notifications_create(drafts=drafts, now=now)
    return offered
