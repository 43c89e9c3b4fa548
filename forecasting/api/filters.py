"""Query filters (django-filter); a bad value is a 400 with the parameter under ``error.fields``."""

from __future__ import annotations

import django_filters as filters

from forecasting.models import Article, ModelRun, Prediction, Question, Score


class QuestionFilter(filters.FilterSet):
    article = filters.ModelChoiceFilter(
        queryset=Article.objects.all(), to_field_name="slug", help_text="An article's slug."
    )
    status = filters.MultipleChoiceFilter(
        choices=Question.Status.choices, help_text="One or more statuses (repeat the parameter)."
    )
    type = filters.ChoiceFilter(field_name="question_type", choices=Question.Type.choices)
    closes_before = filters.IsoDateTimeFilter(
        field_name="closes_at", lookup_expr="lt", help_text="Closing strictly before this ISO 8601 time."
    )
    closes_after = filters.IsoDateTimeFilter(
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
    question = filters.NumberFilter(field_name="question_id", help_text="A question's id.")

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
    question = filters.NumberFilter(field_name="question_id", help_text="A question's id.")

    class Meta(ScoreFilter.Meta):
        fields = ["question", "kind", "method"]


class ModelRunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ModelRun.Status.choices)
    method = filters.ChoiceFilter(choices=ModelRun.Method.choices)

    class Meta:
        model = ModelRun
        fields = ["status", "method"]
