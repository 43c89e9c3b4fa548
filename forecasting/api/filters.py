"""Query filters (django-filter); a bad value is a 400 with the parameter under ``error.fields``."""

from __future__ import annotations

import datetime as dt

import django_filters as filters
from django import forms

from forecasting.models import Article, ModelRun, Prediction, Question, Score

# Ids are 64-bit (BigAutoField): a larger number is no id, and the database driver would raise
# OverflowError (a 500) if it were sent.
MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """A whole-number id within the database's range; anything else is a 400 naming the parameter."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(filters.fields.IsoDateTimeField):
    """An ISO 8601 time, converted to UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:  # e.g. year 1 at +01:00 is before year 1 in UTC
            raise forms.ValidationError("This time is outside the calendar in UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class QuestionFilter(filters.FilterSet):
    article = filters.ModelChoiceFilter(
        queryset=Article.objects.all(), to_field_name="slug", help_text="An article's slug."
    )
    status = filters.MultipleChoiceFilter(
        choices=Question.Status.choices, help_text="One or more statuses (repeat the parameter)."
    )
    type = filters.ChoiceFilter(field_name="question_type", choices=Question.Type.choices)
    closes_before = UtcIsoDateTimeFilter(
        field_name="closes_at", lookup_expr="lt", help_text="Closing strictly before this ISO 8601 time."
    )
    closes_after = UtcIsoDateTimeFilter(
        field_name="closes_at", lookup_expr="gte", help_text="Closing at or after this ISO 8601 time."
    )

    class Meta:
        model = Question
        fields = ["article", "status", "type", "closes_before", "closes_after"]


class ArticleFilter(filters.FilterSet):
    section = filters.CharFilter(help_text="Exact section name.")

    class Meta:
        model = Article
        fields = ["section"]


class PredictionFilter(filters.FilterSet):
    question = IdFilter(field_name="question_id", help_text="A question's id.")

    class Meta:
        model = Prediction
        fields = ["question"]


class ScoreFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Score.Kind.choices)
    method = filters.ChoiceFilter(choices=Score.Method.choices)

    class Meta:
        model = Score
        fields = ["kind", "method"]


class OwnScoreFilter(ScoreFilter):
    question = IdFilter(field_name="question_id", help_text="A question's id.")

    class Meta(ScoreFilter.Meta):
        fields = ["question", "kind", "method"]


class ModelRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ModelRun.Status.choices)
    method = filters.ChoiceFilter(choices=ModelRun.Method.choices)

    class Meta:
        model = ModelRun
        fields = ["status", "method"]
