"""Editorial actions on questions: create, open, close, resolve, annul, un-resolve.

Each locks the question row, checks the actor's permission (``PermissionDenied``) and the
transition (``ValidationError``), records a ``QuestionEvent``, and after commit schedules
the Celery tasks that recompute what depends on the resolution.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..jobs import enqueue
from ..models import Article, Question, QuestionEvent, QuestionOption, Resolution
from ..signals import question_status_changed
from .bayesian import bayes_refit_request

Status = Question.Status


def _require(actor, permission: str) -> None:
    if not actor.has_perm(permission):
        raise PermissionDenied(f"You need the {permission.split('.')[-1].replace('_', ' ')} permission.")


def _locked(question: Question) -> Question:
    return Question.objects.select_for_update().get(pk=question.pk)


def _record(question: Question, *, actor, action: str, from_status: str, note: str = "") -> None:
    QuestionEvent.objects.create(
        question=question, actor=actor, action=action, from_status=from_status, to_status=question.status, note=note
    )


def _set_status(question: Question, status: str) -> None:
    question.status = status
    question.save(update_fields=["status", "updated_at"])
    # Receivers (the market: it opens, closes and settles with its question) write in the editor's transaction.
    question_status_changed.send(sender=Question, question=question)


def _schedule_scoring(question: Question, *, reason: str) -> None:
    # After commit: the worker must see the resolution this transaction wrote.
    enqueue("forecasting.tasks.score_question", question.pk)
    enqueue("forecasting.tasks.refit_aggregators")
    if settings.BAYES_AUTO_REFIT:
        bayes_refit_request(reason=f"question {question.pk} {reason}")


@transaction.atomic
def question_create(
    *,
    actor,
    article: Article,
    title: str,
    resolution_criteria: str,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    question_type: str = Question.Type.BINARY,
    options: Sequence[str] = (),
    note: str = "",
    paragraph: int | None = None,
) -> Question:
    """Create a draft question (with its options when multiple choice); ``paragraph`` places its card
    in the article (after that paragraph, 1 = the first; ``None``: after the text)."""
    _require(actor, "forecasting.add_question")
    errors: dict[str, str] = {}
    title = title.strip()
    title_max = Question._meta.get_field("title").max_length
    if not title:
        errors["title"] = "A question needs a title."
    elif len(title) > title_max:
        errors["title"] = f"A title has at most {title_max} characters."
    elif Question.objects.filter(article=article, title=title).exists():
        errors["title"] = "This article already has a question with this title."
    if not resolution_criteria.strip():
        errors["resolution_criteria"] = "Write how the question resolves."
    if closes_at <= opens_at:
        errors["closes_at"] = "The close date must be after the open date."
    labels = [label.strip() for label in options if label.strip()]
    label_max = QuestionOption._meta.get_field("label").max_length
    if question_type == Question.Type.MULTIPLE_CHOICE:
        if len(labels) < 2:
            errors["options"] = "A multiple-choice question needs at least two options."
        elif len(set(labels)) != len(labels):
            errors["options"] = "Options must be different from each other."
        elif any(len(label) > label_max for label in labels):
            # PostgreSQL would refuse the row (DataError); SQLite would silently keep it.
            errors["options"] = f"An option has at most {label_max} characters."
    elif question_type == Question.Type.BINARY:
        if labels:
            errors["options"] = "A yes/no question has no options."
    else:
        errors["question_type"] = f"Unknown question type “{question_type}”."
    if paragraph is not None and not 1 <= paragraph <= 32767:
        errors["paragraph"] = "The paragraph is a number from 1 (the first); leave it empty for the end."
    if errors:
        raise ValidationError(errors)
    try:
        # A savepoint: a concurrent create of the same title loses the race cleanly, as a field error.
        with transaction.atomic():
            question = Question.objects.create(
                article=article,
                title=title,
                resolution_criteria=resolution_criteria.strip(),
                question_type=question_type,
                opens_at=opens_at,
                closes_at=closes_at,
                paragraph=paragraph,
                status=Status.DRAFT,
                created_by=actor,
            )
    except IntegrityError:
        if Question.objects.filter(article=article, title=title).exists():
            raise ValidationError({"title": "This article already has a question with this title."}) from None
        raise
    QuestionOption.objects.bulk_create(
        QuestionOption(question=question, position=i, label=label) for i, label in enumerate(labels)
    )
    _record(question, actor=actor, action=QuestionEvent.Action.CREATED, from_status="", note=note)
    return question


@transaction.atomic
def question_open(*, question: Question, actor, note: str = "") -> Question:
    """Open a draft (or re-open a closed) question for forecasts."""
    _require(actor, "forecasting.open_question")
    question = _locked(question)
    if question.status not in (Status.DRAFT, Status.CLOSED):
        raise ValidationError(f"Only a draft or closed question can be opened; this one is {question.status}.")
    if question.closes_at <= timezone.now():
        raise ValidationError("The close date has passed; move it later before opening the question.")
    from_status = question.status
    if question.published_at is None:
        # Readers see a question only once it has opened; nothing later (annul, un-resolve) publishes it.
        question.published_at = timezone.now()
        question.save(update_fields=["published_at"])
    _set_status(question, Status.OPEN)
    _record(question, actor=actor, action=QuestionEvent.Action.OPENED, from_status=from_status, note=note)
    return question


@transaction.atomic
def question_close(*, question: Question, actor, note: str = "") -> Question:
    """Stop taking forecasts; the question awaits resolution."""
    _require(actor, "forecasting.close_question")
    question = _locked(question)
    if question.status != Status.OPEN:
        raise ValidationError(f"Only an open question can be closed; this one is {question.status}.")
    _set_status(question, Status.CLOSED)
    _record(question, actor=actor, action=QuestionEvent.Action.CLOSED, from_status=Status.OPEN, note=note)
    return question


def active_resolution(question: Question) -> Resolution | None:
    return question.resolutions.select_related("option").filter(retracted_at__isnull=True).first()


@transaction.atomic
def question_resolve(
    *, question: Question, actor, outcome: str, option_id: int | None = None, note: str = ""
) -> Resolution:
    """Resolve an open or closed question: YES/NO, or one option of a multiple-choice question.

    Resolving again with the same outcome returns the existing resolution (a double-submitted
    form is harmless); another outcome is refused until the question is un-resolved.
    """
    _require(actor, "forecasting.resolve_question")
    question = _locked(question)
    option = None
    if question.is_binary:
        if outcome not in (Resolution.Outcome.YES, Resolution.Outcome.NO):
            raise ValidationError({"outcome": "A yes/no question resolves as “yes” or “no”."})
    else:
        option = question.options.filter(pk=option_id).first() if option_id is not None else None
        if outcome != Resolution.Outcome.OPTION or option is None:
            raise ValidationError({"outcome": "Choose the option this question resolves to."})

    current = active_resolution(question)
    if current is not None:
        if current.outcome == outcome and current.option_id == (option.pk if option else None):
            return current
        raise ValidationError(
            f"This question is already {question.get_status_display().lower()} as “{current.describe()}”. "
            "Un-resolve it first to change the outcome."
        )
    if question.status not in (Status.OPEN, Status.CLOSED):
        raise ValidationError(f"A {question.status} question cannot be resolved.")

    from_status = question.status
    resolution = Resolution.objects.create(
        question=question, outcome=outcome, option=option, note=note, resolved_by=actor
    )
    _set_status(question, Status.RESOLVED)
    _record(question, actor=actor, action=QuestionEvent.Action.RESOLVED, from_status=from_status, note=note)
    _schedule_scoring(question, reason="resolved")
    return resolution


@transaction.atomic
def question_annul(*, question: Question, actor, note: str = "") -> Resolution:
    """Annul a question that cannot resolve fairly: nobody is scored on it."""
    _require(actor, "forecasting.annul_question")
    question = _locked(question)
    current = active_resolution(question)
    if current is not None and current.outcome == Resolution.Outcome.ANNULLED:
        return current
    if question.status not in (Status.DRAFT, Status.OPEN, Status.CLOSED):
        raise ValidationError(f"A {question.status} question cannot be annulled; un-resolve it first.")
    from_status = question.status
    resolution = Resolution.objects.create(
        question=question, outcome=Resolution.Outcome.ANNULLED, note=note, resolved_by=actor
    )
    _set_status(question, Status.ANNULLED)
    _record(question, actor=actor, action=QuestionEvent.Action.ANNULLED, from_status=from_status, note=note)
    _schedule_scoring(question, reason="annulled")
    return resolution


@transaction.atomic
def question_unresolve(*, question: Question, actor, note: str = "") -> Question:
    """Retract a resolution or annulment; the question goes back to closed and loses its scores."""
    _require(actor, "forecasting.resolve_question")
    question = _locked(question)
    if question.status not in (Status.RESOLVED, Status.ANNULLED):
        raise ValidationError(
            f"Only a resolved or annulled question can be un-resolved; this one is {question.status}."
        )
    current = active_resolution(question)
    if current is not None:
        current.retracted_at = timezone.now()
        current.retracted_by = actor
        current.save(update_fields=["retracted_at", "retracted_by"])
    from_status = question.status
    _set_status(question, Status.CLOSED)
    _record(question, actor=actor, action=QuestionEvent.Action.UNRESOLVED, from_status=from_status, note=note)
    _schedule_scoring(question, reason="un-resolved")
    return question
