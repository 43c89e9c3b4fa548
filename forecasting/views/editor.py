"""The editors' desk: question status actions and resolution (on the question page), the dashboard,
drafting a question, and the Bayesian model's runs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from forecasting import services
from forecasting.forms import NoteForm, QuestionCreateForm, ResolveForm
from forecasting.models import ModelRun, Question, Resolution

from .questions import render_question, validation_messages


def _editor_action(request: HttpRequest, question: Question, action, success: str, **kwargs) -> HttpResponse:
    try:
        action(question=question, actor=request.user, **kwargs)
    except ValidationError as error:
        for message in validation_messages(error):
            messages.error(request, message)
        return render_question(request, question, status=400)
    messages.success(request, success)
    return redirect(question.get_absolute_url())


@login_required
@require_POST
def question_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Open, close, annul or un-resolve a question (the services check permissions: 403)."""
    question = get_object_or_404(Question.objects.visible_to(request.user), pk=pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    handlers = {
        "open": (services.question_open, "The question is open for forecasts."),
        "close": (services.question_close, "The question is closed."),
        "annul": (services.question_annul, "The question is annulled; nobody is scored on it."),
        "unresolve": (services.question_unresolve, "The resolution was retracted; the question is closed again."),
    }
    if action not in handlers:
        return HttpResponse(status=404)
    handler, success = handlers[action]
    return _editor_action(request, question, handler, success, note=note)


@login_required
@require_POST
def question_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("forecasting.resolve_question"):
        raise PermissionDenied("Only editors can resolve questions.")
    question = get_object_or_404(Question.objects.visible_to(request.user), pk=pk)
    form = ResolveForm(request.POST, question=question)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return render_question(request, question, status=400)
    outcome = form.cleaned_data["outcome"]
    kwargs = {"note": form.cleaned_data["note"]}
    if question.is_binary:
        kwargs["outcome"] = outcome
    else:
        kwargs.update(outcome=Resolution.Outcome.OPTION, option_id=int(outcome))
    return _editor_action(
        request,
        question,
        services.question_resolve,
        "Resolved. Scores are being computed and will appear in a moment.",
        **kwargs,
    )


@require_safe
@login_required
@permission_required("forecasting.add_question", raise_exception=True)
def editor_dashboard(request: HttpRequest) -> HttpResponse:
    questions = Question.objects.select_related("article").annotate(
        forecasters=Count("predictions__forecaster", distinct=True)
    )
    by_status = {status.label: [q for q in questions if q.status == status.value] for status in Question.Status}
    return render(request, "editor/dashboard.html", {"by_status": by_status})


@login_required
@permission_required("forecasting.add_question", raise_exception=True)
def editor_question_create(request: HttpRequest) -> HttpResponse:
    form = QuestionCreateForm(request.POST or None, initial={"article": request.GET.get("article")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            question = services.question_create(
                actor=request.user,
                article=data["article"],
                title=data["title"],
                resolution_criteria=data["resolution_criteria"],
                question_type=data["question_type"],
                options=data["options"].splitlines(),
                opens_at=data["opens_at"],
                closes_at=data["closes_at"],
                paragraph=data["paragraph"],
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
            else:
                for message in error.messages:
                    form.add_error(None, message)
        else:
            messages.success(request, "Draft created. Open it when it is ready for readers.")
            return redirect(question.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(request, "editor/question_form.html", {"form": form}, status=status)


@require_safe
@login_required
@permission_required("forecasting.view_modelrun", raise_exception=True)
def editor_model_runs(request: HttpRequest) -> HttpResponse:
    """The Bayesian model's fits: progress of the running one, diagnostics of the last ones."""
    if request.method == "POST":
        if not request.user.has_perm("forecasting.add_modelrun"):
            raise PermissionDenied("Only editors can ask for a refit.")
        services.bayes_refit_request(reason=f"requested by {request.user.username}")
        messages.success(request, "Refit queued: a worker will pick it up in a few seconds.")
        return redirect("editor_model_runs")
    runs = list(ModelRun.objects.all()[:25])
    in_use = services.bayes_run_in_use()
    running = any(run.status == ModelRun.Status.RUNNING for run in runs)
    return render(request, "editor/model_runs.html", {"runs": runs, "in_use": in_use, "running": running})
