"""The editor desk (``/editor/``): the queues an editor works from, each item with its next action.

The desk is a list of queues, and other apps add theirs the way they add question-page panels
(``views/panels.py``): ``register_desk_queue`` from their ``AppConfig.ready()`` (the comments app's
hidden comments: comments/desk.py). Forecasting never imports them. A queue is a context function,
called with the request on every desk page (``None`` leaves the queue out, e.g. for a user who may
not act on it), and a template rendered with the desk's context plus that dict; a ``count`` in the
dict shows in the desk's summary, ``urgent`` marks it there as needing attention.

Every queue runs a bounded number of queries (counts are annotated, never fetched per row), and at
most ``QUEUE_LIMIT`` items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count, Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from forecasting.models import Prediction, Question, QuestionEvent, Resolution

DeskContext = Callable[[HttpRequest], dict[str, Any] | None]
QUEUE_LIMIT = 20
RECENT_DAYS = 14
AUDIT_LOG_LENGTH = 30
Status = Question.Status


@dataclass(frozen=True)
class DeskQueue:
    name: str
    title: str
    template: str
    context: DeskContext
    order: int


@dataclass(frozen=True)
class ShownQueue:
    """A queue on one desk page: its section's id and title, its template and what it renders."""

    name: str
    title: str
    template: str
    context: dict[str, Any]

    @property
    def count(self) -> int | None:
        return self.context.get("count")

    @property
    def urgent(self) -> bool:
        return bool(self.context.get("urgent")) and bool(self.count)


_queues: dict[str, DeskQueue] = {}


def register_desk_queue(name: str, *, title: str, context: DeskContext, template: str, order: int = 50) -> DeskQueue:
    """Add a queue to the editor desk (``order``: lower comes first; forecasting's own run from 10 to
    50 and the audit log is last, at 90). Registering a name again replaces that queue."""
    queue = DeskQueue(name=name, title=title, template=template, context=context, order=order)
    _queues[name] = queue
    return queue


def desk_queues(request: HttpRequest) -> list[ShownQueue]:
    """The queues this desk page shows, in their order."""
    shown = []
    for queue in sorted(_queues.values(), key=lambda q: (q.order, q.name)):
        context = queue.context(request)
        if context is not None:
            shown.append(ShownQueue(queue.name, queue.title, queue.template, context))
    return shown


# --- forecasting's own queues --------------------------------------------------------------------------


def _with_forecasters(questions):
    return questions.select_related("article").annotate(forecasters=Count("predictions__forecaster", distinct=True))


def _page(queryset) -> dict[str, Any]:
    return {"items": list(queryset[:QUEUE_LIMIT]), "count": queryset.count()}


def drafts_queue(request: HttpRequest) -> dict[str, Any]:
    """Drafts to review, the most recently changed first."""
    drafts = Question.objects.filter(status=Status.DRAFT).select_related("article", "created_by")
    return _page(drafts.order_by("-updated_at", "-id"))


def overdue_open_queue(request: HttpRequest) -> dict[str, Any]:
    """Open questions past their close date: the scheduler closes them within a minute, so any here
    means it is behind (or down)."""
    overdue = Question.objects.filter(status=Status.OPEN, closes_at__lte=timezone.now())
    return _page(_with_forecasters(overdue).order_by("closes_at", "id")) | {"urgent": True}


def awaiting_resolution_queue(request: HttpRequest) -> dict[str, Any]:
    """Closed questions waiting for their outcome, the longest waiting first, with the days since closing."""
    now = timezone.now()
    page = _page(_with_forecasters(Question.objects.filter(status=Status.CLOSED)).order_by("closes_at", "id"))
    for question in page["items"]:
        question.days_overdue = max((now - question.closes_at).days, 0)
    return page | {"urgent": True}


def no_forecasts_queue(request: HttpRequest) -> dict[str, Any]:
    """Open questions nobody has forecast yet, open longest first (worth a push, or a better title)."""
    now = timezone.now()
    quiet = (
        Question.objects.filter(status=Status.OPEN, closes_at__gt=now)
        .filter(~Exists(Prediction.objects.filter(question=OuterRef("pk"))))
        .select_related("article")
        .order_by("opens_at", "id")
    )
    page = _page(quiet)
    for question in page["items"]:
        question.days_open = max((now - question.opens_at).days, 0)
    return page


def recently_resolved_queue(request: HttpRequest) -> dict[str, Any]:
    """Resolutions and annulments of the last two weeks, newest first, in case one must be taken back."""
    since = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    recent = (
        Resolution.objects.filter(
            retracted_at__isnull=True,
            resolved_at__gte=since,
            question__status__in=[Status.RESOLVED, Status.ANNULLED],
        )
        .select_related("question", "question__article", "option", "resolved_by")
        .order_by("-resolved_at", "-id")
    )
    return _page(recent) | {"days": RECENT_DAYS}


def audit_log_queue(request: HttpRequest) -> dict[str, Any]:
    """The latest editorial events across questions: who did what, or the system (the scheduler)."""
    events = QuestionEvent.objects.select_related("actor", "question").order_by("-created_at", "-id")
    return {"events": list(events[:AUDIT_LOG_LENGTH])}


register_desk_queue(
    "drafts", title="Drafts to review", context=drafts_queue, template="editor/_desk_drafts.html", order=10
)
register_desk_queue(
    "overdue",
    title="Open past their close date",
    context=overdue_open_queue,
    template="editor/_desk_overdue.html",
    order=20,
)
register_desk_queue(
    "awaiting",
    title="Awaiting resolution",
    context=awaiting_resolution_queue,
    template="editor/_desk_awaiting.html",
    order=30,
)
register_desk_queue(
    "quiet", title="Open, no forecasts yet", context=no_forecasts_queue, template="editor/_desk_quiet.html", order=40
)
register_desk_queue(
    "recent",
    title="Recently resolved or annulled",
    context=recently_resolved_queue,
    template="editor/_desk_recent.html",
    order=50,
)
register_desk_queue("log", title="Audit log", context=audit_log_queue, template="editor/_desk_log.html", order=90)


@require_safe
@login_required
@permission_required("forecasting.add_question", raise_exception=True)
def editor_dashboard(request: HttpRequest) -> HttpResponse:
    """The editor desk: every queue, and a summary of their counts linking to them."""
    return render(request, "editor/desk.html", {"queues": desk_queues(request), "now": timezone.now()})
