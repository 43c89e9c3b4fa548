"""Web views: thin. They validate a form, call one service and render or redirect."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from forecasting import aggregation, services
from forecasting.models import Article, ModelRun, Prediction, Question, Resolution, Score
from market.views import trade_panel_context

from .charts import step_chart
from .forms import (
    BinaryForecastForm,
    MultipleChoiceForecastForm,
    NoteForm,
    QuestionCreateForm,
    ResolveForm,
    SignupForm,
)
from .templatetags.forecast_format import percent


def _validation_messages(error: ValidationError) -> list[str]:
    return [str(m) for m in error.messages]


def home(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.annotate(
        open_questions=Count("questions", filter=Q(questions__status=Question.Status.OPEN)),
        all_questions=Count("questions", filter=~Q(questions__status=Question.Status.DRAFT)),
    )
    return render(request, "forecasting/home.html", {"articles": articles})


def _visible_questions(request: HttpRequest, queryset):
    if request.user.has_perm("forecasting.change_question"):
        return queryset
    return queryset.exclude(status=Question.Status.DRAFT)


def _question_card(request: HttpRequest, question: Question) -> dict:
    mine = None
    if request.user.is_authenticated:
        mine = question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id").first()
    community = services.community_forecast(question=question)
    options = list(question.options.all())
    option_rows = []
    if not question.is_binary:
        mine_vector = mine.probability_vector() if mine else None
        for i, option in enumerate(options):
            option_rows.append(
                {
                    "option": option,
                    "community": community.probabilities[i] if community.probabilities else None,
                    "mine": mine_vector[i] if mine_vector else None,
                }
            )
    return {
        "question": question,
        "mine": mine,
        "community": community,
        "option_rows": option_rows,
        "accepts_forecasts": question.accepts_forecasts(),
    }


def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(Article, slug=slug)
    questions = _visible_questions(request, article.questions.all())
    cards = []
    for question in questions:
        card = _question_card(request, question)
        if question.is_binary:  # multiple choice is forecast on the question page
            card["form"] = _forecast_form(question, mine=card["mine"])
            card["next"] = f"{article.get_absolute_url()}#q{question.pk}"
        cards.append(card)
    return render(request, "forecasting/article_detail.html", {"article": article, "cards": cards})


def _forecast_form(question: Question, data=None, *, mine: Prediction | None = None):
    """The forecast form, pre-filled with the reader's latest forecast."""
    initial = {}
    if question.is_binary:
        if mine is not None:
            initial["probability"] = percent(mine.probability, 2)
        return BinaryForecastForm(data, initial=initial)
    if mine is not None:
        for option, value in zip(question.options.all(), mine.probability_vector(), strict=True):
            initial[f"option_{option.pk}"] = percent(value, 2)
    return MultipleChoiceForecastForm(data, question=question, initial=initial)


def _render_question(request: HttpRequest, question: Question, *, form=None, status: int = 200) -> HttpResponse:
    card = _question_card(request, question)
    history = []
    my_scores = []
    if request.user.is_authenticated:
        history = list(question.predictions.filter(forecaster=request.user).order_by("-made_at", "-id"))
        my_scores = list(Score.objects.filter(question=question, forecaster=request.user))
    resolution = question.resolutions.select_related("option", "resolved_by").filter(retracted_at__isnull=True).first()
    is_editor = request.user.has_perm("forecasting.change_question")
    current = services.aggregates_current(question=question)
    bayes = (
        question.aggregate_snapshots.filter(method=services.BAYES_METHOD)
        .select_related("model_run")
        .order_by("-at", "-id")
        .first()
    )
    aggregates = [
        {"name": name, "description": aggregation.AGGREGATORS[name].description, "snapshot": snapshot}
        for name, snapshot in current.items()
    ]
    score_table = {}
    for score in my_scores:
        score_table.setdefault(score.kind, {"kind": score.kind, "label": score.get_kind_display()})[score.method] = (
            score.value
        )
    context = {
        **card,
        "aggregates": aggregates,
        "bayes": bayes,
        "history_chart": step_chart(
            [(a.at.timestamp(), a.probability_yes) for a in services.aggregate_history(question=question)]
        )
        if question.is_binary
        else None,
        **trade_panel_context(request, question),
        "score_table": [score_table[k] for k in ("brier", "log", "baseline", "peer") if k in score_table],
        "coverage": my_scores[0].coverage if my_scores else None,
        "article": question.article,
        "form": form or _forecast_form(question, mine=card["mine"]),
        "history": history,
        "my_scores": my_scores,
        "resolution": resolution,
        "scored_forecasters": Score.objects.filter(
            question=question, kind=Score.Kind.BRIER, method=Score.Method.SPOT
        ).count(),
        "is_editor": is_editor,
        "resolve_form": ResolveForm(question=question) if is_editor else None,
        "events": question.events.select_related("actor").order_by("-created_at", "-id") if is_editor else [],
    }
    return render(request, "forecasting/question_detail.html", context, status=status)


def question_detail(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(_visible_questions(request, Question.objects.select_related("article")), pk=pk)
    return _render_question(request, question)


@login_required
@require_POST
def forecast_submit(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(_visible_questions(request, Question.objects.all()), pk=pk)
    form = _forecast_form(question, request.POST)
    if form.is_valid():
        try:
            if question.is_binary:
                services.prediction_create(
                    question=question, forecaster=request.user, probability=form.cleaned_data["probability"]
                )
            else:
                services.prediction_create(
                    question=question,
                    forecaster=request.user,
                    option_probabilities=form.cleaned_data["option_probabilities"],
                )
        except ValidationError as error:
            for message in _validation_messages(error):
                form.add_error(None, message)
        else:
            messages.success(request, f"Your forecast on “{question.title}” is saved.")
            next_url = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                next_url = question.get_absolute_url()
            return redirect(next_url)
    return _render_question(request, question, form=form, status=400)


# --- editor actions -----------------------------------------------------------------------------


def _editor_action(request: HttpRequest, question: Question, action, success: str, **kwargs) -> HttpResponse:
    try:
        action(question=question, actor=request.user, **kwargs)
    except ValidationError as error:
        for message in _validation_messages(error):
            messages.error(request, message)
        return _render_question(request, question, status=400)
    messages.success(request, success)
    return redirect(question.get_absolute_url())


@login_required
@require_POST
def question_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Open, close, annul or un-resolve a question (the services check permissions: 403)."""
    question = get_object_or_404(Question, pk=pk)
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
    question = get_object_or_404(Question, pk=pk)
    form = ResolveForm(request.POST, question=question)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return _render_question(request, question, status=400)
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


@permission_required("forecasting.add_question", raise_exception=True)
def editor_dashboard(request: HttpRequest) -> HttpResponse:
    questions = Question.objects.select_related("article").annotate(
        forecasters=Count("predictions__forecaster", distinct=True)
    )
    by_status = {status.label: [q for q in questions if q.status == status.value] for status in Question.Status}
    return render(request, "editor/dashboard.html", {"by_status": by_status})


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


# --- readers --------------------------------------------------------------------------------------


@login_required
def my_forecasts(request: HttpRequest) -> HttpResponse:
    predictions = (
        Prediction.objects.filter(forecaster=request.user)
        .select_related("question", "question__article")
        .order_by("-made_at", "-id")
    )
    scores = (
        Score.objects.filter(forecaster=request.user, method=Score.Method.SPOT)
        .select_related("question")
        .order_by("-computed_at", "kind")
    )
    return render(request, "forecasting/my_forecasts.html", {"predictions": predictions, "scores": scores})


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Pick a question and make your first forecast.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form}, status=400 if request.method == "POST" else 200)


def leaderboard(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    article = get_object_or_404(Article, slug=slug) if slug else None
    board = services.leaderboard(article=article)
    return render(request, "forecasting/leaderboard.html", {"article": article, "board": board})


def track_record(request: HttpRequest, username: str) -> HttpResponse:
    forecaster = get_object_or_404(User, username=username)
    record = services.forecaster_track_record(forecaster=forecaster)
    return render(request, "forecasting/track_record.html", {"forecaster": forecaster, "record": record})


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
