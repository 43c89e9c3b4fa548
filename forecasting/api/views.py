"""Forecasting's API views: thin, like the web's. Validate the input, call one service, serialize the result."""

from __future__ import annotations

from django.db.models import Count, Max, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from forecasting import services
from forecasting.models import AggregateSnapshot, Article, ModelRun, Prediction, Question, Resolution, Score

from . import filters
from . import serializers as s
from .base import OWN_DATA, PUBLIC_READ, RESTRICTED, ApiView, validated
from .permissions import has_perm, visible_question_or_404, visible_questions


def community_by_question(questions) -> dict[int, services.CommunityForecast]:
    """The headline community prediction of many questions in two queries (a page of a list)."""
    ids = [q.pk for q in questions]
    newest = (
        AggregateSnapshot.objects.filter(question_id__in=ids, method=services.HEADLINE_METHOD)
        .values("question_id")
        .annotate(last_id=Max("id"))
        .values_list("last_id", flat=True)
    )
    return {
        snapshot.question_id: services.CommunityForecast(
            forecasters=snapshot.forecasters, probabilities=list(snapshot.probabilities)
        )
        for snapshot in AggregateSnapshot.objects.filter(id__in=list(newest))
    }


# --- articles --------------------------------------------------------------------------------------


def _articles():
    return Article.objects.annotate(
        questions_open=Count(
            "questions", filter=Q(questions__status=Question.Status.OPEN, questions__published_at__isnull=False)
        ),
        questions_published=Count("questions", filter=Q(questions__published_at__isnull=False)),
    ).order_by("-published_at", "-id")


@extend_schema(tags=["articles"], summary="List articles", description="Newest first. Public.")
class ArticleList(ApiView, generics.ListAPIView):
    queryset = Article.objects.none()
    serializer_class = s.ArticleSerializer
    filterset_class = filters.ArticleFilter
    error_codes = PUBLIC_READ

    def get_queryset(self):
        return _articles()


@extend_schema(tags=["articles"], summary="An article and its questions", description="Public.")
class ArticleDetail(ApiView, generics.RetrieveAPIView):
    queryset = Article.objects.none()
    serializer_class = s.ArticleDetailSerializer
    lookup_field = "slug"
    error_codes = (404,)

    def get_queryset(self):
        return _articles()

    def retrieve(self, request, *args, **kwargs):
        article = self.get_object()
        questions = list(visible_questions(request.user).filter(article=article))
        context = {
            **self.get_serializer_context(),
            "questions": questions,
            "community": community_by_question(questions),
        }
        return Response(s.ArticleDetailSerializer(article, context=context).data)


# --- questions -------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        summary="List questions",
        description="Public; drafts only for editors. Filter by article, status, type and close date.",
    ),
    post=extend_schema(
        summary="Create a draft question (editors)",
        description="Needs `forecasting.add_question`. Calls `question_create`; the question starts as a draft.",
        request=s.QuestionCreateSerializer,
        responses={201: s.QuestionDetailSerializer},
    ),
)
class QuestionListCreate(ApiView, generics.ListCreateAPIView):
    queryset = Question.objects.none()
    serializer_class = s.QuestionSerializer
    filterset_class = filters.QuestionFilter
    error_codes = {"GET": PUBLIC_READ, "POST": (400, 401, 403)}

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [AllowAny()]
        return [has_perm("forecasting.add_question")()]

    def get_queryset(self):
        return visible_questions(self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "community": community_by_question(page)}
        return self.get_paginated_response(s.QuestionSerializer(page, many=True, context=context).data)

    def create(self, request, *args, **kwargs):
        data = validated(s.QuestionCreateSerializer, request.data)
        question = services.question_create(actor=request.user, **data)
        question = Question.objects.select_related("article").get(pk=question.pk)
        return Response(
            s.QuestionDetailSerializer(question, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(
    tags=["questions"],
    summary="A question",
    description="Options, resolution, community prediction, every current aggregate (the Bayesian one with its "
    "90% interval and model run) and the market's prices. Public; drafts only for editors.",
)
class QuestionDetail(ApiView, generics.RetrieveAPIView):
    queryset = Question.objects.none()
    serializer_class = s.QuestionDetailSerializer
    error_codes = (404,)

    def get_queryset(self):
        return visible_questions(self.request.user).prefetch_related("options")


@extend_schema(
    tags=["questions"],
    summary="Aggregate history of a question",
    description="Every value of one aggregation method, oldest first (one per forecast; `bayes`: one per update). "
    "Public.",
    parameters=[s.AggregateHistoryQuerySerializer],
)
class QuestionAggregates(ApiView, generics.ListAPIView):
    queryset = AggregateSnapshot.objects.none()
    serializer_class = s.AggregatePointSerializer
    filter_backends = []
    error_codes = PUBLIC_READ

    def get_queryset(self):
        question = visible_question_or_404(self.request, self.kwargs["pk"])
        method = validated(s.AggregateHistoryQuerySerializer, self.request.query_params)["method"]
        return AggregateSnapshot.objects.filter(question=question, method=method).order_by("at", "id")


@extend_schema(
    tags=["scores"],
    summary="Every forecaster's scores on a question (analysts)",
    description="Needs `forecasting.view_score` (Analysts). Forecasters are anonymous ids, stable across questions.",
)
class QuestionScores(ApiView, generics.ListAPIView):
    queryset = Score.objects.none()
    serializer_class = s.QuestionScoreSerializer
    filterset_class = filters.ScoreFilter
    permission_classes = [has_perm("forecasting.view_score")]
    error_codes = RESTRICTED

    def get_queryset(self):
        question = visible_question_or_404(self.request, self.kwargs["pk"])
        return Score.objects.filter(question=question).order_by("method", "kind", "value", "id")


@extend_schema(tags=["scores"], summary="My scores", description="The signed-in forecaster's scores, newest first.")
class MyScores(ApiView, generics.ListAPIView):
    queryset = Score.objects.none()
    serializer_class = s.OwnScoreSerializer
    filterset_class = filters.OwnScoreFilter
    permission_classes = [IsAuthenticated]
    error_codes = OWN_DATA

    def get_queryset(self):
        return (
            Score.objects.filter(forecaster=self.request.user)
            .select_related("question")
            .order_by("-computed_at", "question_id", "method", "kind")
        )


@extend_schema(
    tags=["leaderboards"],
    summary="Leaderboard",
    description="Forecasters ranked by mean time-averaged peer score over resolved questions; those below the "
    "minimum coverage are listed apart. Global, or one article's with `?article=<slug>`. Public.",
    parameters=[s.LeaderboardQuerySerializer],
    responses={200: s.LeaderboardSerializer},
)
class LeaderboardView(ApiView, APIView):
    error_codes = (400,)

    def get(self, request):
        query = validated(s.LeaderboardQuerySerializer, request.query_params)
        article = query.get("article")
        # Private readers keep their rank but not their name (the exports' pseudonyms must not be
        # joinable with a public board); the viewer sees their own name.
        board = services.public_leaderboard(article=article, period=query.get("period", "all"), viewer=request.user)
        data = {
            "article": article.slug if article else None,
            "period": board.period,
            "min_coverage": board.min_coverage,
            "ranked": board.ranked,
            "unranked": board.unranked,
        }
        return Response(s.LeaderboardSerializer(data).data)


# --- forecasts ------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(summary="My forecasts", description="The signed-in reader's forecasts, newest first."),
    post=extend_schema(
        summary="Make a forecast",
        description="A new forecast (an update is a new one; the latest counts). Yes/no questions take "
        "`probability`, multiple-choice questions `option_probabilities`.",
        request=s.PredictionCreateSerializer,
        responses={201: s.PredictionSerializer},
    ),
)
class Predictions(ApiView, generics.ListCreateAPIView):
    throttle_scope = "predictions"
    queryset = Prediction.objects.none()
    serializer_class = s.PredictionSerializer
    filterset_class = filters.PredictionFilter
    permission_classes = [IsAuthenticated]
    error_codes = OWN_DATA

    def get_queryset(self):
        return Prediction.objects.filter(forecaster=self.request.user).order_by("-made_at", "-id")

    def create(self, request, *args, **kwargs):
        data = validated(s.PredictionCreateSerializer, request.data, questions=visible_questions(request.user))
        prediction = services.prediction_create(
            question=data["question"],
            forecaster=request.user,
            probability=data.get("probability"),
            option_probabilities=data.get("option_probabilities"),
            cdf=data.get("cdf"),
            components=data.get("components"),
            rationale=data["rationale"],
        )
        return Response(s.PredictionSerializer(prediction).data, status=status.HTTP_201_CREATED)


# --- model runs -------------------------------------------------------------------------------------


class _ModelRuns(ApiView):
    queryset = ModelRun.objects.none()
    permission_classes = [has_perm("forecasting.view_modelrun")]

    def get_queryset(self):
        return ModelRun.objects.order_by("-started_at", "-id")

    def get_serializer_context(self) -> dict:
        run = services.bayes_run_in_use()
        return {**super().get_serializer_context(), "in_use_id": run.pk if run else None}


@extend_schema(
    tags=["model-runs"],
    summary="Fits of the Bayesian model (editors, analysts)",
    description="Needs `forecasting.view_modelrun`. Newest first.",
)
class ModelRunList(_ModelRuns, generics.ListAPIView):
    serializer_class = s.ModelRunSerializer
    filterset_class = filters.ModelRunFilter
    error_codes = RESTRICTED


@extend_schema(
    tags=["model-runs"],
    summary="One fit of the Bayesian model, with its parameters (editors, analysts)",
    description="Needs `forecasting.view_modelrun`.",
)
class ModelRunDetail(_ModelRuns, generics.RetrieveAPIView):
    serializer_class = s.ModelRunDetailSerializer
    error_codes = (401, 403, 404)


# --- editor actions ---------------------------------------------------------------------------------


class QuestionAction(ApiView, generics.GenericAPIView):
    """POST to an editorial action; answers with the question as it is now."""

    queryset = Question.objects.none()
    serializer_class = s.NoteSerializer
    error_codes = RESTRICTED

    def act(self, question: Question, actor, data: dict) -> None:  # pragma: no cover - abstract
        """Each action calls its question service; subclasses define it."""
        raise NotImplementedError

    def post(self, request, pk: int):
        question = get_object_or_404(Question.objects.visible_to(request.user), pk=pk)  # editors see drafts too
        self.act(question, request.user, validated(self.get_serializer_class(), request.data))
        question = Question.objects.select_related("article").prefetch_related("options").get(pk=pk)
        return Response(s.QuestionDetailSerializer(question, context=self.get_serializer_context()).data)


def _action_schema(summary: str, perm: str, request=s.NoteSerializer):
    return extend_schema(
        tags=["editor"],
        summary=summary,
        description=f"Editors: needs `{perm}`. The change is recorded in the question's audit log.",
        request=request,
        responses={200: s.QuestionDetailSerializer},
    )


@_action_schema("Open a draft or closed question", "forecasting.open_question")
class QuestionOpen(QuestionAction):
    permission_classes = [has_perm("forecasting.open_question")]

    def act(self, question, actor, data):
        services.question_open(question=question, actor=actor, note=data["note"])


@_action_schema("Close a question", "forecasting.close_question")
class QuestionClose(QuestionAction):
    permission_classes = [has_perm("forecasting.close_question")]

    def act(self, question, actor, data):
        services.question_close(question=question, actor=actor, note=data["note"])


@_action_schema(
    "Resolve a question (yes/no, or the winning option)", "forecasting.resolve_question", request=s.ResolveSerializer
)
class QuestionResolve(QuestionAction):
    serializer_class = s.ResolveSerializer
    permission_classes = [has_perm("forecasting.resolve_question")]

    def act(self, question, actor, data):
        if "option" in data:
            if not question.options.filter(pk=data["option"]).exists():
                raise ValidationError({"option": "That is not an option of this question."})
            services.question_resolve(
                question=question,
                actor=actor,
                outcome=Resolution.Outcome.OPTION,
                option_id=data["option"],
                note=data["note"],
                source=data["source"],
            )
        elif "value" in data or "date" in data:
            value = data["date"].timestamp() if "date" in data else data["value"]
            services.question_resolve(
                question=question,
                actor=actor,
                outcome=Resolution.Outcome.VALUE,
                value=value,
                note=data["note"],
                source=data["source"],
            )
        else:
            services.question_resolve(
                question=question, actor=actor, outcome=data["outcome"], note=data["note"], source=data["source"]
            )


@_action_schema("Annul a question (nobody is scored)", "forecasting.annul_question")
class QuestionAnnul(QuestionAction):
    permission_classes = [has_perm("forecasting.annul_question")]

    def act(self, question, actor, data):
        services.question_annul(question=question, actor=actor, note=data["note"])


@_action_schema("Un-resolve a question (back to closed)", "forecasting.resolve_question")
class QuestionUnresolve(QuestionAction):
    permission_classes = [has_perm("forecasting.resolve_question")]

    def act(self, question, actor, data):
        services.question_unresolve(question=question, actor=actor, note=data["note"])


# --- auth -------------------------------------------------------------------------------------------


@extend_schema(
    tags=["auth"],
    summary="Get an API token",
    description="Exchange a username and password for the account's token; send it as `Authorization: Token <key>`.",
    request=s.CredentialsSerializer,
    responses={200: s.TokenSerializer},
)
class TokenObtain(ApiView, ObtainAuthToken):
    throttle_scope = "token"
    authentication_classes = []  # credentials in the body; no session, so no CSRF check
    permission_classes = [AllowAny]
    error_codes = (400,)
