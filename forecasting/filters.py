"""The filters of the question list (/questions/): text search, status, article, closing soon,
resolved, whether the reader forecast, and the sort order (django-filter; read-only)."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from forecasting import services
from forecasting.models import AggregateSnapshot, Article, Prediction, Question

CLOSING_SOON = dt.timedelta(days=7)
MOVE_WINDOW = dt.timedelta(hours=24)

SORTS = [
    ("closing", "Closing soonest"),
    ("forecasters", "Most forecasters"),
    ("newest", "Newest"),
    ("move", "Biggest move in 24 h"),
]


# Each type's headline method (numeric and date questions have their own); a question has snapshots of its
# type's methods only, so filtering on both picks the right one.
HEADLINE_METHODS = (services.HEADLINE_METHOD, services.CONTINUOUS_HEADLINE_METHOD)


def _latest_headline(field: str):
    """The newest headline snapshot's ``field`` of the outer question (one correlated subquery)."""
    snapshots = AggregateSnapshot.objects.filter(question=OuterRef("pk"), method__in=HEADLINE_METHODS)
    return Subquery(snapshots.order_by("-at", "-id").values(field)[:1])


def annotated(queryset: QuerySet[Question], user) -> QuerySet[Question]:
    """What a row of the list shows, in the same query: forecasters, the community's probabilities,
    and (signed-in readers) whether the reader forecast."""
    queryset = queryset.select_related("article").annotate(
        forecasters=Coalesce(_latest_headline("forecasters"), Value(0)),
        community_probabilities=_latest_headline("probabilities"),
    )
    if user.is_authenticated:
        queryset = queryset.annotate(
            forecast_by_me=Exists(Prediction.objects.filter(question=OuterRef("pk"), forecaster=user))
        )
    return queryset


class QuestionListFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Words in the question or its criteria"}),
    )
    status = django_filters.ChoiceFilter(choices=Question.Status.choices, empty_label="Any status")
    article = django_filters.ModelChoiceFilter(
        queryset=Article.objects.order_by("-published_at"), to_field_name="slug", empty_label="Any article"
    )
    closing_soon = django_filters.BooleanFilter(
        method="filter_closing_soon", label="Closing within 7 days", widget=forms.CheckboxInput
    )
    resolved = django_filters.BooleanFilter(method="filter_resolved", label="Resolved", widget=forms.CheckboxInput)
    mine = django_filters.ChoiceFilter(
        method="filter_mine",
        label="Your forecasts",
        empty_label="All questions",
        choices=[("forecast", "Questions I forecast"), ("not_forecast", "Questions I haven't forecast")],
    )
    sort = django_filters.ChoiceFilter(method="order", choices=SORTS, empty_label=None, label="Sort by")

    class Meta:
        model = Question
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs) -> None:
        super().__init__(*args, request=request, **kwargs)
        self.now = timezone.now()
        if request is None or not request.user.is_authenticated:
            del self.filters["mine"]  # anonymous readers have no forecasts to filter by

    @property
    def sort_key(self) -> str:
        value = self.form.cleaned_data.get("sort") if self.is_bound and self.form.is_valid() else None
        return value or "closing"

    def search(self, queryset: QuerySet[Question], name: str, value: str) -> QuerySet[Question]:
        for word in value.split():
            queryset = queryset.filter(Q(title__icontains=word) | Q(resolution_criteria__icontains=word))
        return queryset

    def filter_closing_soon(self, queryset: QuerySet[Question], name: str, value: bool) -> QuerySet[Question]:
        if not value:
            return queryset
        return queryset.filter(
            status=Question.Status.OPEN, closes_at__gt=self.now, closes_at__lte=self.now + CLOSING_SOON
        )

    def filter_resolved(self, queryset: QuerySet[Question], name: str, value: bool) -> QuerySet[Question]:
        return queryset.filter(status=Question.Status.RESOLVED) if value else queryset

    def filter_mine(self, queryset: QuerySet[Question], name: str, value: str) -> QuerySet[Question]:
        mine = Prediction.objects.filter(question=OuterRef("pk"), forecaster=self.request.user)
        if value == "forecast":
            return queryset.filter(Exists(mine))
        return queryset.filter(~Exists(mine))

    def order(self, queryset: QuerySet[Question], name: str, value: str) -> QuerySet[Question]:
        return queryset  # applied by ordered() after filtering, so that the default applies too

    def ordered(self, queryset: QuerySet[Question]) -> QuerySet[Question]:
        """The sort in the database; "move" is sorted by the view (it compares two snapshots)."""
        key = self.sort_key
        if key == "forecasters":
            return queryset.order_by("-forecasters", "closes_at", "id")
        if key == "newest":
            return queryset.order_by(F("published_at").desc(nulls_last=True), "-created_at", "-id")
        open_first = Case(
            When(status=Question.Status.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return queryset.order_by(open_first, "closes_at", "id")
