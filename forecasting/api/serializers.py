"""What forecasting's API reads and writes. Output serializers read models and service results; input
serializers check types and shapes, and leave the business rules to the services.

Other apps add fields to the question's detail through ``extensions`` (the market adds ``market``).
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import salted_hmac
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from forecasting import aggregation, services
from forecasting.models import (
    MAX_PROBABILITY,
    MIN_PROBABILITY,
    RATIONALE_MAX_LENGTH,
    AggregateSnapshot,
    Article,
    ModelRun,
    Prediction,
    Question,
    QuestionOption,
    Resolution,
    Score,
)

from .base import absolute_url
from .extensions import question_fields

# --- helpers ---------------------------------------------------------------------------------------


def _optional_url(request, name: str, **kwargs) -> str | None:
    """The URL of a site page that may not be installed (the downloads): None when it is not."""
    try:
        return absolute_url(request, reverse(name, kwargs=kwargs))
    except NoReverseMatch:
        return None


def forecaster_pseudonym(user_id: int) -> str:
    """A stable, anonymous id for a forecaster (the same across questions; not reversible)."""
    # The salt names the API's old home; it stays, so that published pseudonyms stay the same.
    return "f_" + salted_hmac("webapp.api.forecaster", str(user_id)).hexdigest()[:16]


# --- articles and questions --------------------------------------------------------------------------


class ArticleSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This article in the API.")
    web_url = serializers.SerializerMethodField(help_text="The article's page on the site.")
    questions_open = serializers.IntegerField(read_only=True, help_text="Questions taking forecasts now.")
    questions_published = serializers.IntegerField(read_only=True, help_text="Questions that are not drafts.")

    class Meta:
        model = Article
        fields = [
            "id",
            "slug",
            "url",
            "web_url",
            "title",
            "byline",
            "section",
            "published_at",
            "standfirst",
            "questions_open",
            "questions_published",
        ]

    def get_url(self, article: Article) -> str:
        return absolute_url(self.context.get("request"), reverse("api:article-detail", kwargs={"slug": article.slug}))

    def get_web_url(self, article: Article) -> str:
        return absolute_url(self.context.get("request"), article.get_absolute_url())


class CommunityForecastSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="The aggregation method (the recency-weighted median).")
    forecasters = serializers.IntegerField()
    probabilities = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="One probability per outcome: [P(NO), P(YES)], or one per option in order; numeric and date "
        "questions: the community CDF (201 values, P(X <= location k/200 of the range)); null before any forecast.",
    )
    probability_yes = serializers.FloatField(allow_null=True, help_text="P(YES) for a yes/no question.")


class ConditionalBranchSerializer(serializers.Serializer):
    condition = serializers.IntegerField(help_text="The question A of \u201cif A, then B?\u201d.")
    outcome = serializers.IntegerField(help_text="The question B.")
    branch = serializers.ChoiceField(
        choices=["yes", "no"], help_text="This question is B given A resolves yes, or B given A resolves no."
    )
    other_branch = serializers.IntegerField(help_text="The pair's other branch.")


def conditional_branch(question: Question) -> dict | None:
    """``{condition, outcome, branch, other_branch}`` when the question is a branch of a conditional pair."""
    branches = (("yes", "conditional_if_yes", "if_no_id"), ("no", "conditional_if_no", "if_yes_id"))
    for branch, attribute, other in branches:
        try:
            pair = getattr(question, attribute)
        except ObjectDoesNotExist:
            continue
        return {
            "condition": pair.condition_id,
            "outcome": pair.outcome_id,
            "branch": branch,
            "other_branch": getattr(pair, other),
        }
    return None


class QuestionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This question in the API.")
    web_url = serializers.SerializerMethodField(help_text="The question's page on the site.")
    article = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    accepts_forecasts = serializers.SerializerMethodField()
    community = serializers.SerializerMethodField(help_text="The headline community prediction.")
    conditional = serializers.SerializerMethodField(
        help_text="For a branch of a conditional pair (\u201cif A, then B?\u201d): the pair; null otherwise."
    )

    class Meta:
        model = Question
        fields = [
            "id",
            "url",
            "web_url",
            "article",
            "title",
            "question_type",
            "status",
            "opens_at",
            "closes_at",
            "paragraph",
            "range_min",
            "range_max",
            "open_lower_bound",
            "open_upper_bound",
            "zero_point",
            "unit",
            "accepts_forecasts",
            "community",
            "conditional",
        ]
        extra_kwargs = {
            "range_min": {"help_text": "Numeric and date questions: the low end of the range (dates: epoch seconds)."},
            "range_max": {"help_text": "Numeric and date questions: the high end of the range (dates: epoch seconds)."},
            "zero_point": {"help_text": "A log-scaled numeric question's zero point (Metaculus's convention)."},
        }

    def get_url(self, question: Question) -> str:
        return absolute_url(self.context.get("request"), reverse("api:question-detail", kwargs={"pk": question.pk}))

    def get_web_url(self, question: Question) -> str:
        return absolute_url(self.context.get("request"), question.get_absolute_url())

    def get_accepts_forecasts(self, question: Question) -> bool:
        return question.accepts_forecasts()

    @extend_schema_field(ConditionalBranchSerializer(allow_null=True))
    def get_conditional(self, question: Question) -> dict | None:
        return conditional_branch(question)

    @extend_schema_field(CommunityForecastSerializer)
    def get_community(self, question: Question) -> dict:
        by_question = self.context.get("community")
        if by_question is not None:
            community = by_question.get(question.pk) or services.CommunityForecast(forecasters=0, probabilities=None)
        else:
            community = services.community_forecast(question=question)
        return CommunityForecastSerializer(community).data


class OptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = QuestionOption
        fields = ["id", "position", "label"]


class ResolutionSerializer(serializers.ModelSerializer):
    option = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    outcome_label = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = Resolution
        fields = ["outcome", "option", "outcome_label", "note", "source", "resolved_at"]


class AggregatePointSerializer(serializers.ModelSerializer):
    """One value of an aggregate, after one forecast (or one Bayesian update)."""

    probabilities = serializers.ListField(
        child=serializers.FloatField(), help_text="[P(NO), P(YES)], or one probability per option."
    )
    probability_yes = serializers.SerializerMethodField()
    low = serializers.FloatField(allow_null=True, help_text="Lower end of the 90% interval of P(YES) (bayes only).")
    high = serializers.FloatField(allow_null=True, help_text="Upper end of the 90% interval of P(YES) (bayes only).")
    model_run = serializers.IntegerField(
        source="model_run_id", allow_null=True, help_text="The model run that made it (bayes only)."
    )
    parameters = serializers.DictField(help_text="Learnt parameters used, e.g. the extremizing factor.")

    class Meta:
        model = AggregateSnapshot
        fields = ["at", "probabilities", "probability_yes", "forecasters", "parameters", "low", "high", "model_run"]

    def get_probability_yes(self, snapshot: AggregateSnapshot) -> float | None:
        return snapshot.probability_yes if len(snapshot.probabilities) == 2 else None


class CurrentAggregateSerializer(AggregatePointSerializer):
    description = serializers.SerializerMethodField()

    class Meta(AggregatePointSerializer.Meta):
        fields = ["method", "description", *AggregatePointSerializer.Meta.fields]

    def get_description(self, snapshot: AggregateSnapshot) -> str:
        if snapshot.method == services.BAYES_METHOD:
            return "Bayesian model of forecasters' skill, with a 90% interval (binary questions)."
        aggregator = aggregation.AGGREGATORS.get(snapshot.method)
        return aggregator.description if aggregator else ""


DOWNLOAD_HELP = (
    "The CSV/Parquet download of this data (analysts, signed in on the site); null where the site has no downloads."
)


class QuestionDetailSerializer(QuestionSerializer):
    options = OptionSerializer(many=True, read_only=True, help_text="Multiple choice only, in order.")
    resolution = serializers.SerializerMethodField(help_text="The standing resolution, if any.")
    aggregates = serializers.SerializerMethodField(
        help_text="The current value of every aggregation method, the Bayesian one (`bayes`) included once fitted."
    )
    aggregates_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta(QuestionSerializer.Meta):
        fields = [
            *QuestionSerializer.Meta.fields,
            "resolution_criteria",
            "options",
            "resolution",
            "aggregates",
            "aggregates_url",
            "download_url",
        ]

    def get_fields(self) -> dict:
        # Other apps' fields (extensions.py; the market's ``market``) go just before ``download_url``.
        fields, extra = {}, question_fields()
        for name, field in super().get_fields().items():
            if name == "download_url":
                fields.update(extra)
            fields[name] = field
        return fields

    @extend_schema_field(ResolutionSerializer(allow_null=True))
    def get_resolution(self, question: Question) -> dict | None:
        resolution = services.active_resolution(question)
        return ResolutionSerializer(resolution).data if resolution else None

    @extend_schema_field(CurrentAggregateSerializer(many=True))
    def get_aggregates(self, question: Question) -> list[dict]:
        current = services.aggregates_current(question=question)
        if services.BAYES_METHOD not in current:
            bayes = question.aggregate_snapshots.filter(method=services.BAYES_METHOD).order_by("-at", "-id").first()
            if bayes is not None:
                current[services.BAYES_METHOD] = bayes
        return CurrentAggregateSerializer(current.values(), many=True).data

    def get_aggregates_url(self, question: Question) -> str:
        url = reverse("api:question-aggregates", kwargs={"pk": question.pk})
        return absolute_url(self.context.get("request"), url)

    @extend_schema_field(serializers.URLField(allow_null=True, help_text=DOWNLOAD_HELP))
    def get_download_url(self, question: Question) -> str | None:
        return _optional_url(self.context.get("request"), "download_question", pk=question.pk)


class ArticleDetailSerializer(ArticleSerializer):
    questions = serializers.SerializerMethodField(help_text="The article's questions (drafts only for editors).")
    leaderboard_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta(ArticleSerializer.Meta):
        fields = [*ArticleSerializer.Meta.fields, "body", "questions", "leaderboard_url", "download_url"]

    @extend_schema_field(QuestionSerializer(many=True))
    def get_questions(self, article: Article) -> list[dict]:
        return QuestionSerializer(self.context["questions"], many=True, context=self.context).data

    def get_leaderboard_url(self, article: Article) -> str:
        url = reverse("api:leaderboard") + f"?article={article.slug}"
        return absolute_url(self.context.get("request"), url)

    @extend_schema_field(serializers.URLField(allow_null=True, help_text=DOWNLOAD_HELP))
    def get_download_url(self, article: Article) -> str | None:
        return _optional_url(self.context.get("request"), "download_article", slug=article.slug)


class QuestionCreateSerializer(serializers.Serializer):
    article = serializers.SlugRelatedField(slug_field="slug", queryset=Article.objects.all())
    title = serializers.CharField(max_length=300)
    resolution_criteria = serializers.CharField()
    question_type = serializers.ChoiceField(choices=Question.Type.choices, default=Question.Type.BINARY)
    options = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        help_text="Multiple choice only: the option labels, in order (at least two).",
    )
    range_min = serializers.FloatField(
        required=False, default=None, allow_null=True, help_text="Numeric and date: the low end (dates: epoch seconds)."
    )
    range_max = serializers.FloatField(
        required=False,
        default=None,
        allow_null=True,
        help_text="Numeric and date: the high end (dates: epoch seconds).",
    )
    open_lower_bound = serializers.BooleanField(required=False, default=False)
    open_upper_bound = serializers.BooleanField(required=False, default=False)
    zero_point = serializers.FloatField(
        required=False,
        default=None,
        allow_null=True,
        help_text="Numeric: a log scale's zero point (outside the range).",
    )
    unit = serializers.CharField(required=False, default="", allow_blank=True, max_length=30)
    opens_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    paragraph = serializers.IntegerField(
        required=False,
        default=None,
        allow_null=True,
        min_value=1,
        max_value=32767,
        help_text="Show the question after this paragraph of the article (1 = the first); null: after the text.",
    )


# --- editor actions --------------------------------------------------------------------------------


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=2000, help_text="Kept in the question's audit log."
    )


class ResolveSerializer(NoteSerializer):
    outcome = serializers.ChoiceField(
        choices=[("yes", "Yes"), ("no", "No"), ("below", "Below the range"), ("above", "Above the range")],
        required=False,
        help_text="Yes/no questions: `yes` or `no`; numeric and date questions past an open bound: `below`/`above`.",
    )
    option = serializers.IntegerField(required=False, help_text="Multiple-choice questions: the winning option's id.")
    value = serializers.FloatField(
        required=False, help_text="Numeric questions: the outcome (a value past an open bound resolves below/above)."
    )
    date = serializers.DateTimeField(required=False, help_text="Date questions: the outcome, ISO 8601.")
    source = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=500,
        help_text="Where the outcome was read: a URL or a citation (shown to readers).",
    )

    def validate(self, attrs: dict) -> dict:
        if sum(name in attrs for name in ("outcome", "option", "value", "date")) != 1:
            raise serializers.ValidationError(
                {
                    "outcome": "Give one of: the outcome (`yes`/`no`) of a yes/no question, the winning `option` id, "
                    "a numeric question's `value`, a date question's `date`, or `below`/`above` the range."
                }
            )
        return attrs


# --- forecasts ------------------------------------------------------------------------------------


def _probability_field(**kwargs) -> serializers.DecimalField:
    message = "A probability must be between 0.01 and 0.99."  # no % sign: Django %-formats it
    return serializers.DecimalField(
        max_digits=5,
        decimal_places=4,
        min_value=MIN_PROBABILITY,
        max_value=MAX_PROBABILITY,
        error_messages={"min_value": message, "max_value": message},
        **kwargs,
    )


class PredictionSerializer(serializers.ModelSerializer):
    question = serializers.PrimaryKeyRelatedField(read_only=True)
    probability = serializers.DecimalField(
        max_digits=5, decimal_places=4, read_only=True, allow_null=True, help_text="P(YES); yes/no questions."
    )
    option_probabilities = serializers.ListField(
        child=serializers.DecimalField(max_digits=5, decimal_places=4),
        read_only=True,
        allow_null=True,
        help_text="One probability per option, in order; multiple-choice questions.",
    )
    probabilities = serializers.SerializerMethodField(help_text="[P(NO), P(YES)], one per option, or the CDF.")

    class Meta:
        model = Prediction
        fields = [
            "id",
            "question",
            "probability",
            "option_probabilities",
            "cdf",
            "probabilities",
            "rationale",
            "made_at",
        ]
        read_only_fields = ["rationale"]

    def get_probabilities(self, prediction: Prediction) -> list[float]:
        return prediction.probability_vector()


class ComponentSerializer(serializers.Serializer):
    median = serializers.FloatField(help_text="The median (dates: epoch seconds).")
    low = serializers.FloatField(help_text="The 10th percentile.")
    high = serializers.FloatField(help_text="The 90th percentile.")
    weight = serializers.FloatField(required=False, default=1.0, min_value=0.0)


class PredictionCreateSerializer(serializers.Serializer):
    question = serializers.PrimaryKeyRelatedField(queryset=Question.objects.none())
    probability = _probability_field(
        required=False, help_text="Yes/no questions: P(YES), 0.01 to 0.99, at most four decimals."
    )
    option_probabilities = serializers.ListField(
        child=_probability_field(),
        required=False,
        min_length=2,
        help_text="Multiple-choice questions: one probability per option, in order, adding up to exactly 1.",
    )
    cdf = serializers.ListField(
        child=serializers.FloatField(),
        required=False,
        min_length=201,
        max_length=201,
        help_text="Numeric and date questions: the CDF, 201 values, P(X <= location k/200 of the range) "
        "(Metaculus's format); or give `components` instead.",
    )
    components = ComponentSerializer(
        many=True,
        required=False,
        help_text="Numeric and date questions: up to three components (a median and an 80% interval each, "
        "with a weight), as readers enter them on the page; the server builds the CDF.",
    )
    rationale = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=RATIONALE_MAX_LENGTH,
        help_text=f"Optional: your reasoning, in Markdown, at most {RATIONALE_MAX_LENGTH} characters.",
    )

    def __init__(self, *args, questions=None, **kwargs):
        super().__init__(*args, **kwargs)
        if questions is not None:
            self.fields["question"].queryset = questions


# --- scores and leaderboards ---------------------------------------------------------------------------


class QuestionScoreSerializer(serializers.ModelSerializer):
    forecaster = serializers.SerializerMethodField(
        help_text="An anonymous forecaster id: the same for one forecaster across questions."
    )
    value = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    coverage = serializers.DecimalField(
        max_digits=7, decimal_places=6, read_only=True, help_text="Fraction of the open period with a forecast."
    )

    class Meta:
        model = Score
        fields = ["forecaster", "kind", "method", "value", "coverage", "computed_at"]

    def get_forecaster(self, score: Score) -> str:
        return forecaster_pseudonym(score.forecaster_id)


class OwnScoreSerializer(serializers.ModelSerializer):
    question = serializers.PrimaryKeyRelatedField(read_only=True)
    question_title = serializers.CharField(source="question.title", read_only=True)
    value = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    coverage = serializers.DecimalField(max_digits=7, decimal_places=6, read_only=True)

    class Meta:
        model = Score
        fields = ["question", "question_title", "kind", "method", "value", "coverage", "computed_at"]


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True, help_text="Null for forecasters not yet ranked.")
    username = serializers.CharField(
        allow_null=True, help_text="Null for a reader whose profile is private (the viewer sees their own)."
    )
    label = serializers.CharField(help_text="The username, or “Private forecaster”.")
    is_you = serializers.BooleanField(help_text="This row is the signed-in viewer's.")
    questions = serializers.IntegerField(help_text="Resolved questions scored.")
    mean_peer = serializers.FloatField(help_text="Mean time-averaged peer score: the ranking.")
    total_peer = serializers.FloatField()
    coverage = serializers.FloatField(help_text="Question-equivalents: the sum of per-question coverage.")
    mean_brier = serializers.FloatField(allow_null=True)


class LeaderboardSerializer(serializers.Serializer):
    article = serializers.CharField(allow_null=True, help_text="The article's slug; null for the global board.")
    period = serializers.CharField(help_text="all, 30d, 90d or 365d: questions resolved in that period count.")
    min_coverage = serializers.FloatField(help_text="Coverage needed to be ranked.")
    ranked = LeaderboardRowSerializer(many=True)
    unranked = LeaderboardRowSerializer(many=True, help_text="Forecasters below the minimum coverage.")


class LeaderboardQuerySerializer(serializers.Serializer):
    article = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Article.objects.all(),
        required=False,
        help_text="An article's slug: the board of that article's questions.",
    )
    period = serializers.ChoiceField(
        choices=["all", "30d", "90d", "365d"], required=False, help_text="Only questions resolved in this period."
    )


AGGREGATE_METHODS = list(dict.fromkeys([*aggregation.AGGREGATORS, services.BAYES_METHOD]))


class AggregateHistoryQuerySerializer(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=AGGREGATE_METHODS,
        default=services.HEADLINE_METHOD,
        help_text=f"Aggregation method (default `{services.HEADLINE_METHOD}`).",
    )


# --- model runs -------------------------------------------------------------------------------------


class ModelRunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    in_use = serializers.SerializerMethodField(help_text="The run every new Bayesian aggregate is made with.")
    diagnostics = serializers.DictField(read_only=True)

    class Meta:
        model = ModelRun
        fields = [
            "id",
            "url",
            "method",
            "status",
            "in_use",
            "reason",
            "started_at",
            "finished_at",
            "duration_seconds",
            "progress",
            "progress_message",
            "n_questions",
            "n_forecasters",
            "n_forecasts",
            "data_through",
            "diagnostics",
            "error",
        ]

    def get_url(self, run: ModelRun) -> str:
        return absolute_url(self.context.get("request"), reverse("api:model-run-detail", kwargs={"pk": run.pk}))

    def get_in_use(self, run: ModelRun) -> bool:
        return run.pk == self.context.get("in_use_id")


class ModelRunDetailSerializer(ModelRunSerializer):
    fit = serializers.DictField(read_only=True, help_text="The fitted parameters.")

    class Meta(ModelRunSerializer.Meta):
        fields = [*ModelRunSerializer.Meta.fields, "fit"]


# --- auth -------------------------------------------------------------------------------------------


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
