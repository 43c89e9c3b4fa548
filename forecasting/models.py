"""Articles, the questions they raise, forecasts, resolutions, scores and the audit log."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from .continuous import Scale

MIN_PROBABILITY = Decimal("0.01")
MAX_PROBABILITY = Decimal("0.99")
RATIONALE_MAX_LENGTH = 2000  # characters of Markdown


class ArticleManager(models.Manager):
    def get_by_natural_key(self, slug: str) -> Article:
        return self.get(slug=slug)


class Article(models.Model):
    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=250)
    byline = models.CharField(max_length=200, blank=True)
    section = models.CharField(max_length=80, blank=True)
    published_at = models.DateTimeField()
    standfirst = models.TextField(blank=True, help_text="One-paragraph summary shown above the questions.")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ArticleManager()

    class Meta:
        ordering = ["-published_at", "-id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("article_detail", kwargs={"slug": self.slug})

    def natural_key(self) -> tuple[str]:
        return (self.slug,)


class QuestionType(models.TextChoices):
    BINARY = "binary", "Yes / No"
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    NUMERIC = "numeric", "Numeric"
    DATE = "date", "Date"


# A numeric or date question's forecast is a distribution over a range (``forecasting.continuous``).
CONTINUOUS_TYPES = (QuestionType.NUMERIC, QuestionType.DATE)


class QuestionStatus(models.TextChoices):
    """draft -> open -> closed -> resolved | annulled (un-resolving goes back to closed)."""

    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    RESOLVED = "resolved", "Resolved"
    ANNULLED = "annulled", "Annulled"


VIEW_UNPUBLISHED = "forecasting.change_question"


class QuestionQuerySet(models.QuerySet):
    def published(self) -> QuestionQuerySet:
        """Questions that have ever been opened: what readers may see."""
        return self.filter(published_at__isnull=False)

    def visible_to(self, user) -> QuestionQuerySet:
        """The one visibility rule: editors see every question, everyone else only published ones.

        Keyed on ``published_at`` rather than the status, so a draft annulled (or annulled then
        un-resolved) stays embargoed whatever status it reaches.
        """
        if user is not None and user.has_perm(VIEW_UNPUBLISHED):
            return self
        return self.published()


class QuestionManager(models.Manager.from_queryset(QuestionQuerySet)):
    def get_by_natural_key(self, article_slug: str, title: str) -> Question:
        return self.get(article__slug=article_slug, title=title)


class Question(models.Model):
    """A question an article raises. Identified in fixtures by (article slug, title)."""

    Type = QuestionType
    Status = QuestionStatus

    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="questions")
    title = models.CharField(max_length=300)
    resolution_criteria = models.TextField()
    fine_print = models.TextField(blank=True, help_text="Edge cases and definitions, below the resolution criteria.")
    resolution_source = models.CharField(
        max_length=500, blank=True, help_text="Where the outcome will be read (a named source or a URL)."
    )
    question_type = models.CharField(max_length=20, choices=Type.choices, default=Type.BINARY)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField(help_text="No forecasts are accepted after this time.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # Where the question's card sits in the article: after this paragraph (1 = the first); empty
    # or beyond the last paragraph puts it after the text.
    paragraph = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Show the question after this paragraph of the article (empty: after the text).",
    )
    published_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the question first opened; readers never see it before."
    )
    external_id = models.CharField(
        max_length=200, blank=True, help_text="Identifier in the source an imported question came from."
    )
    # Numeric and date questions: the range readers forecast over (dates as epoch seconds), as Metaculus.
    range_min = models.FloatField(null=True, blank=True, help_text="Numeric/date: the low end of the range.")
    range_max = models.FloatField(null=True, blank=True, help_text="Numeric/date: the high end of the range.")
    open_lower_bound = models.BooleanField(default=False, help_text="The outcome may fall below the range.")
    open_upper_bound = models.BooleanField(default=False, help_text="The outcome may fall above the range.")
    zero_point = models.FloatField(
        null=True, blank=True, help_text="Numeric: a log scale whose zero is this value (outside the range)."
    )
    unit = models.CharField(max_length=30, blank=True, help_text="Numeric: the unit shown after values.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = QuestionManager()

    class Meta:
        ordering = ["closes_at", "id"]
        permissions = [
            ("open_question", "Can open a question for forecasting"),
            ("close_question", "Can close a question"),
            ("resolve_question", "Can resolve and un-resolve a question"),
            ("annul_question", "Can annul a question"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["article", "title"], name="question_title_unique_per_article"),
            models.UniqueConstraint(
                fields=["article", "external_id"], condition=~Q(external_id=""), name="question_external_id_unique"
            ),
            models.CheckConstraint(condition=Q(closes_at__gt=models.F("opens_at")), name="question_closes_after_opens"),
            models.CheckConstraint(condition=Q(status__in=QuestionStatus.values), name="question_status_valid"),
            models.CheckConstraint(condition=Q(question_type__in=QuestionType.values), name="question_type_valid"),
            models.CheckConstraint(
                condition=(
                    Q(question_type__in=CONTINUOUS_TYPES, range_min__isnull=False, range_max__gt=models.F("range_min"))
                    | (
                        ~Q(question_type__in=CONTINUOUS_TYPES)
                        & Q(range_min__isnull=True, range_max__isnull=True, zero_point__isnull=True)
                    )
                ),
                name="question_range_iff_continuous",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("question_detail", kwargs={"pk": self.pk})

    def natural_key(self) -> tuple[str, str]:
        return (self.article.slug, self.title)

    natural_key.dependencies = ["forecasting.article"]

    @property
    def is_binary(self) -> bool:
        return self.question_type == self.Type.BINARY

    @property
    def is_multiple_choice(self) -> bool:
        return self.question_type == self.Type.MULTIPLE_CHOICE

    @property
    def is_continuous(self) -> bool:
        """A numeric or date question: forecasts are distributions over ``scale``."""
        return self.question_type in CONTINUOUS_TYPES

    @property
    def is_date(self) -> bool:
        return self.question_type == self.Type.DATE

    @property
    def scale(self) -> Scale:
        return Scale(
            range_min=self.range_min,
            range_max=self.range_max,
            open_lower=self.open_lower_bound,
            open_upper=self.open_upper_bound,
            zero_point=self.zero_point,
        )

    def format_value(self, value: float | None, *, with_unit: bool = True) -> str:
        """A value on this question's scale as readers read it: a date, or a number with its unit."""
        if value is None:
            return ""
        if self.is_date:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%-d %b %Y")
        magnitude = abs(value)
        text = f"{value:,.0f}" if magnitude >= 100 else f"{value:,.3g}" if magnitude >= 1 else f"{value:.3g}"
        return f"{text} {self.unit}".strip() if with_unit else text

    def accepts_forecasts(self, at=None) -> bool:
        at = at or timezone.now()
        return self.status == self.Status.OPEN and self.opens_at <= at < self.closes_at


class QuestionOptionManager(models.Manager):
    def get_by_natural_key(self, article_slug: str, title: str, position: int) -> QuestionOption:
        return self.get(question__article__slug=article_slug, question__title=title, position=position)


class QuestionOption(models.Model):
    """One outcome of a multiple-choice question, in display order."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=200)

    objects = QuestionOptionManager()

    class Meta:
        ordering = ["question_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["question", "position"], name="option_position_unique"),
            models.UniqueConstraint(fields=["question", "label"], name="option_label_unique"),
        ]

    def __str__(self) -> str:
        return self.label

    def natural_key(self) -> tuple[str, str, int]:
        return (*self.question.natural_key(), self.position)

    natural_key.dependencies = ["forecasting.question"]


class Prediction(models.Model):
    """One forecast. Append-only: updating a forecast adds a row; the latest row per forecaster counts.

    Binary questions store the probability of YES; multiple-choice questions store one
    probability per option, in option order, as decimal strings that sum to 1; numeric and date
    questions store a 201-point CDF on the question's scaled range (``forecasting.continuous``).
    """

    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="predictions")
    forecaster = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="predictions")
    probability = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    option_probabilities = models.JSONField(null=True, blank=True)
    cdf = models.JSONField(null=True, blank=True, help_text="Numeric/date: P(X <= location k/200 of the range).")
    made_at = models.DateTimeField(default=timezone.now)
    # Why the forecaster thinks so (Good Judgment Open style), Markdown, shown beside the forecast.
    rationale = models.TextField(blank=True, default="", max_length=RATIONALE_MAX_LENGTH)

    class Meta:
        ordering = ["made_at", "id"]
        # Granted explicitly to a person, never through a role: exports show pseudonyms otherwise.
        permissions = [("view_forecaster_identities", "Can see forecasters' identities in data exports")]
        indexes = [
            models.Index(fields=["question", "forecaster", "made_at"], name="prediction_latest_idx"),
            # The discussion's newest rationales: few forecasts carry one, so a scan of the question's
            # forecasts (10,000 and more) becomes a walk of its first rows.
            models.Index(
                fields=["question", "-made_at", "-id"], condition=~Q(rationale=""), name="prediction_rationale_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__isnull=True)
                | Q(probability__gte=MIN_PROBABILITY, probability__lte=MAX_PROBABILITY),
                name="prediction_probability_in_range",
            ),
            models.CheckConstraint(
                condition=Q(probability__isnull=False) | Q(option_probabilities__isnull=False) | Q(cdf__isnull=False),
                name="prediction_has_probabilities",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.forecaster} on {self.question_id} at {self.made_at:%Y-%m-%d %H:%M}"

    def probability_vector(self) -> list[float]:
        """The forecast as a vector: [P(no), P(yes)], one probability per option, or the CDF's 201 values."""
        if self.probability is not None:
            p = float(self.probability)
            return [1.0 - p, p]
        if self.cdf is not None:
            return [float(x) for x in self.cdf]
        return [float(x) for x in self.option_probabilities]


class Resolution(models.Model):
    """An editor's resolution of a question. Retracted (never deleted) when un-resolved."""

    class Outcome(models.TextChoices):
        YES = "yes", "Yes"
        NO = "no", "No"
        OPTION = "option", "Option"
        VALUE = "value", "Value"  # numeric and date questions: ``value``
        BELOW = "below", "Below the range"
        ABOVE = "above", "Above the range"
        ANNULLED = "annulled", "Annulled"

    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="resolutions")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    option = models.ForeignKey(QuestionOption, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    value = models.FloatField(null=True, blank=True, help_text="Numeric/date: the outcome (dates as epoch seconds).")
    note = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the outcome was read: a URL or a citation.")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(default=timezone.now)
    retracted_at = models.DateTimeField(null=True, blank=True)
    retracted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-resolved_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["question"], condition=Q(retracted_at__isnull=True), name="one_active_resolution_per_question"
            ),
            models.CheckConstraint(
                condition=Q(outcome="option", option__isnull=False) | (~Q(outcome="option") & Q(option__isnull=True)),
                name="resolution_option_iff_option_outcome",
            ),
            models.CheckConstraint(
                condition=Q(outcome="value", value__isnull=False) | (~Q(outcome="value") & Q(value__isnull=True)),
                name="resolution_value_iff_value_outcome",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.question_id}: {self.describe()}"

    def describe(self) -> str:
        if self.outcome == self.Outcome.OPTION:
            return self.option.label
        if self.outcome == self.Outcome.VALUE:
            return self.question.format_value(self.value)
        return self.get_outcome_display()

    def outcome_index(self) -> int | None:
        """Index of the outcome in ``Prediction.probability_vector()``; None when annulled."""
        if self.outcome == self.Outcome.YES:
            return 1
        if self.outcome == self.Outcome.NO:
            return 0
        if self.outcome == self.Outcome.OPTION:
            return self.option.position
        return None

    def outcome_position(self) -> float | None:
        """A numeric or date outcome's place on the question's scale (``Scale.outcome_position``):
        0..1 inside the range, -inf below it, +inf above it; None otherwise."""
        if self.outcome == self.Outcome.VALUE:
            return float(self.question.scale.outcome_position(self.value))
        if self.outcome == self.Outcome.BELOW:
            return float("-inf")
        if self.outcome == self.Outcome.ABOVE:
            return float("inf")
        return None


class Conditional(models.Model):
    """ "If A, then B?" (Metaculus's conditionals): two yes/no questions readers forecast, B given A
    resolves YES (``if_yes``) and B given A resolves NO (``if_no``). When the condition resolves, the branch
    that did not happen is annulled; the other resolves with ``outcome`` (``services.conditionals``)."""

    condition = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="conditionals_as_condition")
    outcome = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="conditionals_as_outcome")
    if_yes = models.OneToOneField(Question, on_delete=models.PROTECT, related_name="conditional_if_yes")
    if_no = models.OneToOneField(Question, on_delete=models.PROTECT, related_name="conditional_if_no")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["condition", "outcome"], name="conditional_once_per_pair"),
            models.CheckConstraint(condition=~Q(condition=models.F("outcome")), name="conditional_two_questions"),
        ]

    def __str__(self) -> str:
        return f"If {self.condition}, then {self.outcome}?"

    def branches(self) -> list[tuple[str, Question]]:
        return [("yes", self.if_yes), ("no", self.if_no)]


class QuestionEvent(models.Model):
    """Append-only audit log: every editorial change to a question."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        OPENED = "opened", "Opened"
        CLOSED = "closed", "Closed"
        RESOLVED = "resolved", "Resolved"
        ANNULLED = "annulled", "Annulled"
        UNRESOLVED = "unresolved", "Un-resolved"
        EDITED = "edited", "Edited"

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=12, choices=Action.choices)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    note = models.TextField(blank=True)
    # Done by the system (a question closed at its close date by the scheduler), not by an editor.
    automatic = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.question_id} {self.action} by {self.actor}"


class Score(models.Model):
    """A forecaster's score on a resolved question, recomputed from the database by a Celery task.

    ``spot`` scores the forecast standing at resolution; ``time_averaged`` averages the score
    over the question's open period (see ``forecasting.scoring.time_averaged_scores``).
    """

    class Kind(models.TextChoices):
        BRIER = "brier", "Brier score"
        LOG = "log", "Log score"
        BASELINE = "baseline", "Baseline score"
        PEER = "peer", "Peer score"
        CRPS = "crps", "CRPS"  # numeric and date questions, in units of the range

    class Method(models.TextChoices):
        SPOT = "spot", "At resolution"
        TIME_AVERAGED = "time_averaged", "Time-averaged"

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="scores")
    forecaster = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scores")
    resolution = models.ForeignKey(Resolution, on_delete=models.PROTECT, related_name="scores")
    prediction = models.ForeignKey(
        Prediction, on_delete=models.PROTECT, related_name="+", help_text="The forecast standing at resolution."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    method = models.CharField(max_length=14, choices=Method.choices, default=Method.SPOT)
    value = models.DecimalField(max_digits=14, decimal_places=6)
    coverage = models.DecimalField(
        max_digits=7, decimal_places=6, help_text="Fraction of the open period with a standing forecast."
    )
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["question_id", "forecaster_id", "method", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["question", "forecaster", "kind", "method"], name="score_unique_per_kind"),
            models.CheckConstraint(condition=Q(coverage__gte=0, coverage__lte=1), name="score_coverage_in_unit_range"),
        ]
        indexes = [models.Index(fields=["forecaster", "method", "kind"], name="score_forecaster_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.kind} {self.value} for {self.forecaster} on {self.question_id}"


class AggregateState(models.Model):
    """Each forecaster's latest forecast on a question, packed as arrays for incremental aggregation.

    One row per question, updated under the question's row lock when a forecast arrives, so a
    new forecast costs one row read and O(n) numpy work instead of re-reading every forecast.
    Rows are ordered from the oldest latest-forecast to the newest (recency weights need it).
    """

    question = models.OneToOneField(
        Question, on_delete=models.CASCADE, primary_key=True, related_name="aggregate_state"
    )
    forecaster_ids = models.BinaryField(default=bytes)  # int64
    made_at = models.BinaryField(default=bytes)  # float64 epoch seconds
    probabilities = models.BinaryField(default=bytes)  # float64, n x k
    outcomes = models.PositiveSmallIntegerField(default=2)
    last_prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    bayes_pending = models.BooleanField(
        default=False, help_text="A debounced update of the Bayesian aggregate is queued."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"aggregate state of question {self.question_id}"


class AggregateSnapshot(models.Model):
    """The value of one aggregation method on a question after a forecast: the aggregate history."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="aggregate_snapshots")
    method = models.CharField(max_length=40)
    at = models.DateTimeField()
    probabilities = models.JSONField(
        help_text="One probability per outcome: [P(no), P(yes)] or one per option; numeric/date: the 201-point CDF."
    )
    forecasters = models.PositiveIntegerField()
    prediction = models.ForeignKey(Prediction, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    parameters = models.JSONField(default=dict, blank=True, help_text="Learnt parameters used, e.g. the factor.")
    low = models.FloatField(null=True, blank=True, help_text="Lower end of the 90% interval of P(YES) (bayes).")
    high = models.FloatField(null=True, blank=True, help_text="Upper end of the 90% interval of P(YES) (bayes).")
    model_run = models.ForeignKey("ModelRun", null=True, blank=True, on_delete=models.PROTECT, related_name="snapshots")

    class Meta:
        ordering = ["question_id", "method", "at", "id"]
        # With ``id``: "the newest snapshot" (ordered by at, id) is the index's last entry, not a sort of
        # the whole history; the history reads (ordered by at) use its prefix.
        indexes = [models.Index(fields=["question", "method", "at", "id"], name="snapshot_history_at_id_idx")]
        constraints = [
            models.UniqueConstraint(fields=["question", "method", "prediction"], name="snapshot_once_per_prediction")
        ]

    def __str__(self) -> str:
        return f"{self.method} on {self.question_id} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def probability_yes(self) -> float:
        return self.probabilities[-1]


class AggregatorFit(models.Model):
    """Parameters an aggregation method learnt from questions resolved before ``fitted_at``."""

    method = models.CharField(max_length=40)
    parameters = models.JSONField()
    questions_used = models.PositiveIntegerField()
    fitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-fitted_at", "-id"]
        get_latest_by = "fitted_at"

    def __str__(self) -> str:
        return f"{self.method} {self.parameters} ({self.questions_used} questions)"


class ModelRun(models.Model):
    """One fit of the Bayesian forecaster model: when, on what, how, how well.

    The newest succeeded run is the one in use; a run whose diagnostics are bad is marked
    failed and the previous good run stays in use. Every Bayesian aggregate names its run.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Method(models.TextChoices):
        NUTS = "nuts", "Full posterior (NUTS)"
        MAP = "map", "Point estimate (MAP)"
        ADVI = "advi", "Variational (ADVI)"

    method = models.CharField(max_length=8, choices=Method.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    reason = models.CharField(max_length=300, blank=True, help_text="What asked for this fit.")
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    progress_message = models.CharField(max_length=200, blank=True)
    n_questions = models.PositiveIntegerField(default=0)
    n_forecasters = models.PositiveIntegerField(default=0)
    n_forecasts = models.PositiveIntegerField(default=0)
    data_through = models.DateTimeField(null=True, blank=True, help_text="Latest resolution included.")
    diagnostics = models.JSONField(default=dict, blank=True)
    fit = models.JSONField(default=dict, blank=True, help_text="Fitted parameters (forecasting.bayes.BayesFit).")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0, progress__lte=1), name="model_run_progress_unit_range")
        ]

    def __str__(self) -> str:
        return f"model run #{self.pk} ({self.method}, {self.status})"


class ModelSchedule(models.Model):
    """Singleton row that serialises refits: at most one runs, and a burst of requests gives one more.

    ``requested_at`` moves forward on every request; a run records the request it started
    for, and when it ends it starts another only if a newer request arrived meanwhile.
    ``lease_expires_at`` lets a redelivered task (its worker died) take over a stale run.
    """

    requested_at = models.DateTimeField(null=True, blank=True)
    requested_reason = models.CharField(max_length=300, blank=True)
    running = models.ForeignKey(ModelRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    running_task_id = models.CharField(max_length=64, blank=True)
    running_for = models.DateTimeField(null=True, blank=True, help_text="The request the running fit serves.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "model refit schedule"


class OutboxTask(models.Model):
    """A Celery task to send, written in the transaction that asks for it (a transactional outbox).

    ``forecasting.jobs.enqueue`` writes the row with the caller's data and tries to publish it
    once that transaction commits; if the broker is unreachable the row stays unsent and the
    periodic ``forecasting.tasks.outbox_flush`` publishes it later. So committed work always gets
    its task, and a broker outage never fails the request that asked for it.
    """

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    not_before = models.DateTimeField(help_text="Not to run before this (the countdown asked for).")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0, help_text="Publishing attempts so far.")
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="Given up: the task cannot be published (e.g. no task by this name)."
    )

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The flusher's scan: only unsent rows, oldest first.
            models.Index(
                fields=["created_at", "id"],
                name="outbox_unsent_idx",
                condition=Q(sent_at__isnull=True, failed_at__isnull=True),
            ),
            models.Index(fields=["sent_at"], name="outbox_sent_idx"),
            models.Index(fields=["task_name", "created_at"], name="outbox_task_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)} ({'sent' if self.sent_at else 'unsent'})"


class ForecasterProfile(models.Model):
    """What a reader lets the public pages show. Private by default (defect 8).

    A private reader's per-question scores never appear on public pages (their track record is
    theirs alone; leaderboards list them without their name), so that the pseudonymous exports
    cannot be joined with a public page to put a name on a pseudonym.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forecaster_profile")
    is_public = models.BooleanField(
        default=False, help_text="Show this reader's name and track record on the public pages."
    )
    display_name = models.CharField(
        max_length=60, blank=True, help_text="The name shown for a public reader (empty: the username)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user} ({'public' if self.is_public else 'private'})"
