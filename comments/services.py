"""The comments' services: the only writers of comments, votes and moderation, plus the discussion's read.

Writers are keyword-only and atomic, check everything (a refused action raises ``ValidationError``
or ``PermissionDenied`` and writes nothing) and audit moderation (``CommentEvent``). Rate limits are
the entry points' job (``comments.ratelimit``), not theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from forecasting.models import Prediction, Question

from .models import MODERATE, Comment, CommentEvent, CommentVote, HiddenRationale, RationaleEvent
from .signals import comment_posted

# Comments are taken while a question is open, closed or resolved; not on drafts or annulled questions.
COMMENTABLE = (Question.Status.OPEN, Question.Status.CLOSED, Question.Status.RESOLVED)
SORTS = {"newest": "Newest", "top": "Top"}
REASON_MAX_LENGTH = 500
RATIONALES_SHOWN = 100  # the newest ones; the page is a discussion, not an archive


def can_moderate(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(MODERATE))


def accepts_comments(question: Question) -> bool:
    return question.status in COMMENTABLE


def _clean_text(text: str, *, name: str, max_length: int, required: bool) -> str:
    text = (text or "").strip()
    if "\x00" in text:
        raise ValidationError({name: "The text contains a NUL character."})
    if required and not text:
        raise ValidationError({name: "This cannot be empty."})
    if len(text) > max_length:
        raise ValidationError({name: f"At most {max_length} characters (this has {len(text)})."})
    return text


# --- writers ------------------------------------------------------------------------------------


@transaction.atomic
def comment_create(*, question: Question, author, body: str, parent: Comment | None = None) -> Comment:
    """A comment, or a reply when ``parent`` is given. A reply to a reply joins its top-level comment's
    thread (threads are one level deep); a hidden comment takes no replies."""
    if author is None or not author.is_authenticated:
        raise PermissionDenied("Sign in to comment.")
    if not Question.objects.visible_to(author).filter(pk=question.pk).exists():
        raise PermissionDenied("You cannot see this question.")
    if not accepts_comments(question):
        raise ValidationError("This question is not taking comments.")
    body = _clean_text(body, name="body", max_length=settings.COMMENT_MAX_LENGTH, required=True)
    if parent is not None:
        if parent.question_id != question.pk:
            raise ValidationError({"parent": "That comment is on another question."})
        if parent.parent_id is not None:
            parent = parent.parent
        # Locked, so that a reply cannot slip in while an editor hides the thread.
        parent = Comment.objects.select_for_update().get(pk=parent.pk)
        if parent.is_hidden:
            raise ValidationError({"parent": "That comment was hidden by an editor; it takes no replies."})
    comment = Comment.objects.create(question=question, author=author, body=body, parent=parent)
    # In the transaction: what receivers queue (a reply's notification) commits with the comment.
    comment_posted.send(sender=Comment, comment=comment)
    return comment


@transaction.atomic
def comment_hide(*, comment: Comment, actor, reason: str) -> Comment:
    """Hide a comment from readers (an editor, with a reason). It is kept, and the action audited."""
    if not can_moderate(actor):
        raise PermissionDenied("Only editors hide comments.")
    reason = _clean_text(reason, name="reason", max_length=REASON_MAX_LENGTH, required=True)
    locked = Comment.objects.select_for_update().get(pk=comment.pk)
    if locked.is_hidden:
        raise ValidationError("This comment is already hidden.")
    locked.is_hidden, locked.hidden_by, locked.hidden_at, locked.hidden_reason = True, actor, timezone.now(), reason
    locked.save(update_fields=["is_hidden", "hidden_by", "hidden_at", "hidden_reason"])
    CommentEvent.objects.create(comment=locked, action=CommentEvent.Action.HIDE, actor=actor, reason=reason)
    return locked


@transaction.atomic
def comment_unhide(*, comment: Comment, actor, reason: str = "") -> Comment:
    """Show a hidden comment again (an editor; the reason is optional). Audited like hiding."""
    if not can_moderate(actor):
        raise PermissionDenied("Only editors unhide comments.")
    reason = _clean_text(reason, name="reason", max_length=REASON_MAX_LENGTH, required=False)
    locked = Comment.objects.select_for_update().get(pk=comment.pk)
    if not locked.is_hidden:
        raise ValidationError("This comment is not hidden.")
    locked.is_hidden, locked.hidden_by, locked.hidden_at, locked.hidden_reason = False, None, None, ""
    locked.save(update_fields=["is_hidden", "hidden_by", "hidden_at", "hidden_reason"])
    CommentEvent.objects.create(comment=locked, action=CommentEvent.Action.UNHIDE, actor=actor, reason=reason)
    return locked


@transaction.atomic
def rationale_hide(*, prediction: Prediction, actor, reason: str) -> HiddenRationale:
    """Hide a forecast's rationale from readers (an editor, with a reason). The forecast still counts;
    the text is kept, and the action audited."""
    if not can_moderate(actor):
        raise PermissionDenied("Only editors hide rationales.")
    reason = _clean_text(reason, name="reason", max_length=REASON_MAX_LENGTH, required=True)
    locked = Prediction.objects.select_for_update().get(pk=prediction.pk)
    if not locked.rationale:
        raise ValidationError("This forecast has no rationale.")
    if HiddenRationale.objects.filter(prediction=locked).exists():
        raise ValidationError("This rationale is already hidden.")
    hidden = HiddenRationale.objects.create(prediction=locked, hidden_by=actor, reason=reason)
    RationaleEvent.objects.create(prediction=locked, action=CommentEvent.Action.HIDE, actor=actor, reason=reason)
    return hidden


@transaction.atomic
def rationale_unhide(*, prediction: Prediction, actor, reason: str = "") -> None:
    """Show a hidden rationale again (an editor; the reason is optional). Audited like hiding."""
    if not can_moderate(actor):
        raise PermissionDenied("Only editors unhide rationales.")
    reason = _clean_text(reason, name="reason", max_length=REASON_MAX_LENGTH, required=False)
    locked = Prediction.objects.select_for_update().get(pk=prediction.pk)
    deleted, _ = HiddenRationale.objects.filter(prediction=locked).delete()
    if not deleted:
        raise ValidationError("This rationale is not hidden.")
    RationaleEvent.objects.create(prediction=locked, action=CommentEvent.Action.UNHIDE, actor=actor, reason=reason)


@transaction.atomic
def comment_vote(*, comment: Comment, voter, value: int) -> int:
    """Set the reader's vote on a comment: +1, -1, or 0 to withdraw it. Voting the same twice changes
    nothing (one vote per reader). Returns the comment's score (the sum of its votes)."""
    if voter is None or not voter.is_authenticated:
        raise PermissionDenied("Sign in to vote.")
    if isinstance(value, bool) or value not in (-1, 0, 1):
        raise ValidationError({"value": "A vote is 1, -1, or 0 to withdraw it."})
    # The comment's row is locked: votes on one comment are taken one at a time (no lost updates).
    locked = Comment.objects.select_for_update(of=("self",)).select_related("parent").get(pk=comment.pk)
    if not Question.objects.visible_to(voter).filter(pk=locked.question_id).exists():
        raise PermissionDenied("You cannot see this question.")
    if locked.is_hidden or (locked.parent is not None and locked.parent.is_hidden):
        raise ValidationError("This comment was hidden by an editor.")
    if locked.author_id == voter.pk:
        raise ValidationError("You cannot vote on your own comment.")
    if value == 0:
        CommentVote.objects.filter(comment=locked, voter=voter).delete()
    else:
        CommentVote.objects.update_or_create(comment=locked, voter=voter, defaults={"value": value})
    return CommentVote.objects.filter(comment=locked).aggregate(score=Coalesce(Sum("value"), 0))["score"]


# --- the discussion (read) -----------------------------------------------------------------------


@dataclass
class Thread:
    comment: Comment
    replies: list[Comment] = field(default_factory=list)


@dataclass
class Discussion:
    threads: list[Thread]
    rationales: list[Prediction]
    sort: str
    moderator: bool
    comment_count: int
    option_labels: list[str] = field(default_factory=list)


def _forecast_at_creation(column: str) -> Subquery:
    """The comment author's latest forecast on the question made at or before the comment."""
    return Subquery(
        Prediction.objects.filter(
            question=OuterRef("question"), forecaster=OuterRef("author"), made_at__lte=OuterRef("created_at")
        )
        .order_by("-made_at", "-id")
        .values(column)[:1]
    )


def comments_with_context(question: Question, viewer) -> QuerySet[Comment]:
    """The question's comments with, in one query, each one's score, the viewer's vote and the author's
    forecast at the time (``forecast_probability`` or ``forecast_options``); hidden ones for moderators only
    (and, for everyone else, no reply under a hidden comment)."""
    score = (
        CommentVote.objects.filter(comment=OuterRef("pk")).values("comment").annotate(s=Sum("value")).values("s")[:1]
    )
    queryset = (
        Comment.objects.filter(question=question)
        .select_related("author", "hidden_by")
        .annotate(
            score=Coalesce(Subquery(score), Value(0)),
            # A yes/no forecast has a probability, a multiple-choice one its options' (a numeric or date
            # one neither): the column the question's forecasts leave empty is not looked up.
            forecast_probability=_forecast_at_creation("probability")
            if question.is_binary
            else Value(None, output_field=Prediction._meta.get_field("probability")),
            forecast_options=_forecast_at_creation("option_probabilities")
            if question.is_multiple_choice
            else Value(None, output_field=Prediction._meta.get_field("option_probabilities")),
            # A private reader's forecasts stay out of public pages (the exports' pseudonyms must not
            # be joinable with them): their comments show no forecast.
            author_public=Coalesce(F("author__forecaster_profile__is_public"), Value(False)),
            author_display=Coalesce(F("author__forecaster_profile__display_name"), Value("")),
        )
    )
    if viewer is not None and viewer.is_authenticated:
        mine = CommentVote.objects.filter(comment=OuterRef("pk"), voter=viewer).values("value")[:1]
        queryset = queryset.annotate(my_vote=Coalesce(Subquery(mine), Value(0)))
    else:
        queryset = queryset.annotate(my_vote=Value(0))
    if not can_moderate(viewer):
        queryset = queryset.filter(is_hidden=False).exclude(parent__is_hidden=True)
    return queryset


def discussion(*, question: Question, viewer, sort: str = "newest") -> Discussion:
    """What the discussion under a question shows ``viewer``, in a constant number of queries: the threads
    (top-level comments by ``sort``, replies oldest first beneath) and the forecasts that carry a rationale."""
    if sort not in SORTS:
        sort = "newest"
    comments = list(comments_with_context(question, viewer))
    tops = [c for c in comments if c.parent_id is None]
    threads = {c.pk: Thread(c) for c in tops}
    for c in comments:
        if c.parent_id is not None and c.parent_id in threads:
            threads[c.parent_id].replies.append(c)
    if sort == "top":
        tops.sort(key=lambda c: (-c.score, -c.created_at.timestamp(), -c.pk))
    else:
        tops.sort(key=lambda c: (-c.created_at.timestamp(), -c.pk))
    rationale_rows = Prediction.objects.filter(question=question).exclude(rationale="")
    if not can_moderate(viewer):  # editors see hidden rationales, marked; readers do not
        rationale_rows = rationale_rows.filter(hidden_rationale__isnull=True)
    rationales = list(
        rationale_rows.select_related("forecaster", "hidden_rationale__hidden_by")
        .annotate(
            author_public=Coalesce(F("forecaster__forecaster_profile__is_public"), Value(False)),
            author_display=Coalesce(F("forecaster__forecaster_profile__display_name"), Value("")),
        )
        .order_by("-made_at", "-id")[:RATIONALES_SHOWN]
    )
    labels = [] if question.is_binary else [o.label for o in question.options.all()]
    return Discussion(
        threads=[threads[c.pk] for c in tops],
        rationales=rationales,
        sort=sort,
        moderator=can_moderate(viewer),
        comment_count=len(comments),
        option_labels=labels,
    )


def describe_forecast(probability: Any, options: list | None, labels: list[str]) -> list[tuple[str, float]]:
    """A forecast as (label, probability) pairs: ``[("Yes", 0.7)]`` or one per option; ``[]`` without one."""
    if probability is not None:
        return [("Yes", float(probability))]
    if options:
        return [(label, float(p)) for label, p in zip(labels, options, strict=False)]
    return []


def visible_comment(*, pk: int, viewer) -> Comment:
    """The comment ``pk`` if ``viewer`` may see it (its question visible to them, and not hidden unless they
    moderate); ``Comment.DoesNotExist`` otherwise."""
    queryset = Comment.objects.select_related("question", "parent").filter(
        question__in=Question.objects.visible_to(viewer)
    )
    if not can_moderate(viewer):
        queryset = queryset.filter(is_hidden=False).exclude(parent__is_hidden=True)
    return queryset.get(pk=pk)
