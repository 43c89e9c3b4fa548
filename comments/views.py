"""The discussion's endpoints: post a comment or reply, vote, and (editors) hide or unhide. Each is a POST
that redirects to the comment on the question page (``#comment-<id>``), so the page works without
JavaScript; refused input renders the question page again with a 400 and the reason, and writes nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from forecasting.models import Prediction, Question
from forecasting.ratelimit import too_many_requests
from forecasting.views.questions import render_question

from . import services
from .forms import FAILED_FORM_ATTRIBUTE, CommentForm, HideForm, UnhideForm, VoteForm
from .models import Comment
from .ratelimit import MESSAGE, comment_retry_after


def _to_comment(comment: Comment, sort: str = "") -> HttpResponse:
    query = f"?sort={sort}" if sort in services.SORTS and sort != "newest" else ""
    return redirect(f"{comment.question.get_absolute_url()}{query}#{comment.anchor}")


def _refused(request: HttpRequest, question: Question, error: ValidationError) -> HttpResponse:
    for message in error.messages:
        messages.error(request, message)
    return render_question(request, question, status=400)


def _comment_or_404(request: HttpRequest, comment_id: int) -> Comment:
    try:
        return services.visible_comment(pk=comment_id, viewer=request.user)
    except Comment.DoesNotExist:
        raise Http404("No such comment.") from None


@login_required
@require_POST
def comment_post(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(Question.objects.visible_to(request.user).select_related("article"), pk=pk)
    retry_after = comment_retry_after(request, request.user)
    if retry_after is not None:
        return too_many_requests(request, retry_after, MESSAGE)
    form = CommentForm(request.POST)
    if form.is_valid():
        parent = None
        if form.cleaned_data["parent"]:
            parent = Comment.objects.filter(pk=form.cleaned_data["parent"], question=question).first()
            if parent is None:
                form.add_error("parent", "That comment is not on this question.")
        if not form.errors:
            try:
                comment = services.comment_create(
                    question=question, author=request.user, body=form.cleaned_data["body"], parent=parent
                )
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
            else:
                messages.success(request, "Your comment is posted.")
                return _to_comment(comment)
    setattr(request, FAILED_FORM_ATTRIBUTE, form)
    return render_question(request, question, status=400)


@login_required
@require_POST
def comment_vote(request: HttpRequest, comment_id: int) -> HttpResponse:
    comment = _comment_or_404(request, comment_id)
    form = VoteForm(request.POST)
    if not form.is_valid():
        return _refused(request, comment.question, ValidationError("Choose a vote: up, down or withdraw."))
    try:
        services.comment_vote(comment=comment, voter=request.user, value=form.cleaned_data["value"])
    except ValidationError as error:
        return _refused(request, comment.question, error)
    return _to_comment(comment, request.POST.get("sort", ""))


def _moderate(request: HttpRequest, comment_id: int, form_class, action) -> HttpResponse:
    if not services.can_moderate(request.user):
        raise PermissionDenied("Only editors moderate comments.")
    comment = _comment_or_404(request, comment_id)
    form = form_class(request.POST)
    if not form.is_valid():
        errors = [message for field_errors in form.errors.values() for message in field_errors]
        return _refused(request, comment.question, ValidationError(errors))
    try:
        action(comment=comment, actor=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        return _refused(request, comment.question, error)
    return _to_comment(comment)


@login_required
@require_POST
def comment_hide(request: HttpRequest, comment_id: int) -> HttpResponse:
    return _moderate(request, comment_id, HideForm, services.comment_hide)


@login_required
@require_POST
def comment_unhide(request: HttpRequest, comment_id: int) -> HttpResponse:
    return _moderate(request, comment_id, UnhideForm, services.comment_unhide)


def _moderate_rationale(request: HttpRequest, prediction_id: int, form_class, action) -> HttpResponse:
    if not services.can_moderate(request.user):
        raise PermissionDenied("Only editors moderate rationales.")
    prediction = get_object_or_404(
        Prediction.objects.filter(question__in=Question.objects.visible_to(request.user)).select_related("question"),
        pk=prediction_id,
    )
    form = form_class(request.POST)
    if not form.is_valid():
        errors = [message for field_errors in form.errors.values() for message in field_errors]
        return _refused(request, prediction.question, ValidationError(errors))
    try:
        action(prediction=prediction, actor=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        return _refused(request, prediction.question, error)
    return redirect(f"{prediction.question.get_absolute_url()}#rationale-{prediction.pk}")


@login_required
@require_POST
def rationale_hide(request: HttpRequest, prediction_id: int) -> HttpResponse:
    return _moderate_rationale(request, prediction_id, HideForm, services.rationale_hide)


@login_required
@require_POST
def rationale_unhide(request: HttpRequest, prediction_id: int) -> HttpResponse:
    return _moderate_rationale(request, prediction_id, UnhideForm, services.rationale_unhide)
