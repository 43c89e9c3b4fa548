"""The editor's actions on a question: open and close (one click), resolve (with a source), and annul or
un-resolve (through a confirmation page that asks why); and the Bayesian model's runs. The desk is in
``desk.py``, writing and previewing questions in ``authoring.py``. Every change goes through a service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from forecasting import services
from forecasting.forms import ConfirmForm, NoteForm, ResolveForm
from forecasting.models import ModelRun, Question, Resolution, Score

from .questions import render_question, validation_messages


def _next_or(request: HttpRequest, fallback: str) -> str:
    """Where to go after an action: the form's ``next`` (the desk, say) if it is on this site."""
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return next_url
    return fallback


def _editor_action(request: HttpRequest, question: Question, action, success: str, **kwargs) -> HttpResponse:
    try:
        action(question=question, actor=request.user, **kwargs)
    except ValidationError as error:
        for message in validation_messages(error):
            messages.error(request, message)
        return render_question(request, question, status=400)
    messages.success(request, success)
    return redirect(_next_or(request, question.get_absolute_url()))


@login_required
@require_POST
def question_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Open or close a question (the services check permissions: 403). Annulling and un-resolving ask
    for a reason and a confirmation first: ``question_confirm``."""
    question = get_object_or_404(Question.objects.visible_to(request.user), pk=pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    handlers = {
        "open": (services.question_open, "The question is open for forecasts."),
        "close": (services.question_close, "The question is closed."),
    }
    if action not in handlers:
        raise Http404("No such action.")
    handler, success = handlers[action]
    return _editor_action(request, question, handler, success, note=note)


def _resolve_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The resolve form with the question's criteria beside it; a refused form comes back here with its
    errors next to their fields (400)."""
    if not request.user.has_perm("forecasting.resolve_question"):
        raise PermissionDenied("Only editors can resolve questions.")
    question = get_object_or_404(Question.objects.select_related("article"), pk=pk)
    form = ResolveForm(request.POST or None, question=question)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            outcome = form.cleaned_data["outcome"]
            kwargs = {"note": form.cleaned_data["note"], "source": form.cleaned_data["source"]}
            if question.is_binary:
                kwargs["outcome"] = outcome
            elif question.is_continuous:
                kwargs.update(outcome=outcome, value=form.cleaned_data["value"])
            else:
                kwargs.update(outcome=Resolution.Outcome.OPTION, option_id=int(outcome))
            try:
                services.question_resolve(question=question, actor=request.user, **kwargs)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "Resolved. Scores are being computed and will appear in a moment.")
                return redirect(_next_or(request, question.get_absolute_url()))
        status = 400
    resolvable = question.status in (Question.Status.OPEN, Question.Status.CLOSED)
    context = {
        "question": question,
        "form": form,
        "resolvable": resolvable,
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    return render(request, "editor/resolve.html", context, status=status)


def add_service_errors(form, error: ValidationError) -> None:
    """A service's refusal on the form: next to its field when it names one, above the form otherwise."""
    if hasattr(error, "error_dict"):
        for field, field_messages in error.message_dict.items():
            for message in field_messages:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in error.messages:
            form.add_error(None, message)


@login_required
@require_POST
def question_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """The question page's resolve form posts here."""
    return _resolve_page(request, pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def editor_question_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """Resolve from the desk: the outcome, its source (required) and a note."""
    return _resolve_page(request, pk)


# Annul and un-resolve: what each needs, may start from, and tells the editor before they confirm.
CONFIRMED_ACTIONS = {
    "annul": {
        "permission": "forecasting.annul_question",
        "from": (Question.Status.DRAFT, Question.Status.OPEN, Question.Status.CLOSED),
        "service": services.question_annul,
        "verb": "Annul",
        "done": "The question is annulled; nobody is scored on it.",
    },
    "unresolve": {
        "permission": "forecasting.resolve_question",
        "from": (Question.Status.RESOLVED, Question.Status.ANNULLED),
        "service": services.question_unresolve,
        "verb": "Un-resolve",
        "done": "The resolution was retracted; the question is closed again.",
    },
}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def editor_question_annul(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirm(request, pk, "annul")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def editor_question_unresolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirm(request, pk, "unresolve")


def _confirm(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Annul or un-resolve: GET shows what will happen and asks why (it writes nothing); POST, with the
    reason and the tick, does it through the service."""
    spec = CONFIRMED_ACTIONS[action]
    if not request.user.has_perm(spec["permission"]):
        raise PermissionDenied("Only editors can do this.")
    question = get_object_or_404(Question.objects.select_related("article"), pk=pk)
    form = ConfirmForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                spec["service"](question=question, actor=request.user, note=form.cleaned_data["reason"])
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, spec["done"])
                return redirect(question.get_absolute_url())
        status = 400
    forecasters = question.predictions.values("forecaster").distinct().count()
    kind = Score.Kind.LOG if question.is_continuous else Score.Kind.BRIER  # every scored forecaster has one
    scored = Score.objects.filter(question=question, kind=kind, method=Score.Method.SPOT).count()
    context = {
        "question": question,
        "action": action,
        "verb": spec["verb"],
        "form": form,
        "allowed": question.status in spec["from"],
        "forecasters": forecasters,
        "scored": scored,
        "resolution": services.active_resolution(question),
    }
    return render(request, "editor/confirm.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])  # POST: "Refit now"
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
