"""Conditional questions, "if A, then B?" (Metaculus's conditionals): two yes/no branch questions readers
forecast, P(B | A resolves YES) and P(B | A resolves NO).

Each branch is an ordinary yes/no question (its own forecasts, aggregates, scores and market), created
and opened with the pair. It never takes an editor's resolution: ``conditional_sync`` keeps it in line
with the condition A and the outcome B whenever either changes status (``conditionals_follow``, a
receiver of ``question_status_changed``, so in the same transaction as the editor's action):

- A annulled: both branches annulled;
- A resolved: the branch that did not happen is annulled; the other resolves as B does once B
  resolves (annulled if B is annulled) and waits while B is open or closed;
- A un-resolved: both branches lose what A's resolution gave them and go back to closed.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Conditional, Question, Resolution
from .questions import active_resolution, question_create, question_open, question_settle_automatically

Status = Question.Status
Outcome = Resolution.Outcome
TITLE_MAX = Question._meta.get_field("title").max_length


def _branch_title(condition: Question, outcome: Question, side: str) -> str:
    title = f"If “{condition.title}” resolves {side.capitalize()}: {outcome.title}"
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1].rstrip() + "…"


def _branch_criteria(condition: Question, outcome: Question, side: str) -> str:
    other = "No" if side == "yes" else "Yes"
    return (
        f"Resolves as “{outcome.title}” does, provided “{condition.title}” resolves {side.capitalize()}. "
        f"Annulled if that question resolves {other} or is annulled, or if this outcome is annulled.\n\n"
        f"{outcome.resolution_criteria}"
    )


def _pair_errors(condition: Question, outcome: Question) -> dict[str, str]:
    if condition.pk == outcome.pk:
        return {"outcome": "The condition and the outcome must be two different questions."}
    for field, question in (("condition", condition), ("outcome", outcome)):
        if not question.is_binary:
            return {field: "Both questions of a conditional must be yes/no questions."}
        if question.published_at is None:
            return {field: "Open the question before making a conditional of it: readers must be able to see it."}
        if question.status in (Status.RESOLVED, Status.ANNULLED):
            return {field: f"This question is already {question.get_status_display().lower()}."}
        if Conditional.objects.filter(Q(if_yes=question) | Q(if_no=question)).exists():
            return {field: "A conditional's branch cannot be part of another conditional."}
    if Conditional.objects.filter(condition=condition, outcome=outcome).exists():
        return {"outcome": "This conditional already exists."}
    return {}


@transaction.atomic
def conditional_create(*, actor, condition: Question, outcome: Question, note: str = "") -> Conditional:
    """Create and open the pair "if ``condition``, then ``outcome``?" in the outcome's article.

    The branches close when the first of the two questions closes. Needs the permissions to create
    and to open questions."""
    if not (actor.has_perm("forecasting.add_question") and actor.has_perm("forecasting.open_question")):
        raise PermissionDenied("You need the permissions to create and to open questions.")
    condition = Question.objects.select_for_update().get(pk=condition.pk)
    outcome = Question.objects.select_for_update().get(pk=outcome.pk)
    errors = _pair_errors(condition, outcome)
    closes_at = min(condition.closes_at, outcome.closes_at)
    now = timezone.now()
    if not errors and closes_at <= now:
        errors = {"condition": "One of the two questions has passed its close date."}
    if errors:
        raise ValidationError(errors)
    branches = {}
    for side in ("yes", "no"):
        branch = question_create(
            actor=actor,
            article=outcome.article,
            title=_branch_title(condition, outcome, side),
            resolution_criteria=_branch_criteria(condition, outcome, side),
            opens_at=now,
            closes_at=closes_at,
            paragraph=outcome.paragraph,
            resolution_source=outcome.resolution_source,
            note=note,
        )
        branches[side] = question_open(question=branch, actor=actor, note="Opened with its conditional pair.")
    try:
        with transaction.atomic():
            return Conditional.objects.create(
                condition=condition, outcome=outcome, if_yes=branches["yes"], if_no=branches["no"], created_by=actor
            )
    except IntegrityError:  # the same pair made concurrently: its titles are taken first, so rarely here
        raise ValidationError({"outcome": "This conditional already exists."}) from None


def _wanted(side: str, condition: Question, outcome: Question) -> tuple[str | None, Resolution | None]:
    """The resolution a branch should have (an outcome, or None: none) and the resolution that implies it."""
    condition_resolution = active_resolution(condition)
    if condition.status == Status.ANNULLED:
        return Outcome.ANNULLED, condition_resolution
    if condition.status != Status.RESOLVED:
        return None, None
    if condition_resolution.outcome != side:
        return Outcome.ANNULLED, condition_resolution
    outcome_resolution = active_resolution(outcome)
    if outcome.status == Status.ANNULLED:
        return Outcome.ANNULLED, outcome_resolution
    if outcome.status == Status.RESOLVED:
        return outcome_resolution.outcome, outcome_resolution
    return None, None


def _note(side: str, condition: Question, outcome: Question, wanted: str | None) -> str:
    if wanted is None:
        return f"“{condition.title}” or “{outcome.title}” was un-resolved."
    if wanted == Outcome.ANNULLED:
        status = condition.get_status_display().lower()
        return f"This branch did not happen (“{condition.title}”: {status}) or its outcome was annulled."
    return f"“{condition.title}” resolved {side.capitalize()} and “{outcome.title}” resolved {wanted.capitalize()}."


@transaction.atomic
def conditional_sync(*, conditional: Conditional) -> int:
    """Bring both branches in line with the condition and the outcome; returns how many changed. Idempotent."""
    condition = Question.objects.get(pk=conditional.condition_id)
    outcome = Question.objects.get(pk=conditional.outcome_id)
    changed = 0
    for side, branch in (("yes", conditional.if_yes), ("no", conditional.if_no)):
        wanted, cause = _wanted(side, condition, outcome)
        resolved_by = cause.resolved_by if cause else _last_resolver(branch)
        if resolved_by is None:
            continue  # nothing to retract, and nobody's action to attribute a change to
        changed += question_settle_automatically(
            question=branch, outcome=wanted, resolved_by=resolved_by, note=_note(side, condition, outcome, wanted)
        )
    return changed


def _last_resolver(branch: Question):
    resolution = active_resolution(branch)
    return resolution.resolved_by if resolution else None


def conditionals_follow(sender, question: Question, **kwargs) -> None:
    """``question_status_changed`` receiver: the conditionals whose condition or outcome just changed follow it."""
    for conditional in Conditional.objects.filter(Q(condition=question) | Q(outcome=question)).select_related(
        "if_yes", "if_no"
    ):
        conditional_sync(conditional=conditional)
