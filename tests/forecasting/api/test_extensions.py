"""The question API's extension point: other apps' fields join the question's detail, in their place."""

import pytest
from rest_framework import serializers

from forecasting.api import extensions
from forecasting.api.serializers import QuestionDetailSerializer

pytestmark = pytest.mark.django_db


class ConstantField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, question):
        return f"extra for {question.pk}"


def test_registered_fields_come_before_download_url(monkeypatch, question):
    monkeypatch.setattr(extensions, "_question_fields", {})
    extensions.register_question_field("extra", ConstantField)
    names = list(QuestionDetailSerializer().fields)
    assert names[names.index("aggregates_url") + 1 : names.index("download_url")] == ["extra"]
    assert QuestionDetailSerializer(question).data["extra"] == f"extra for {question.pk}"


def test_without_registrations_the_detail_has_only_forecastings_fields(monkeypatch):
    monkeypatch.setattr(extensions, "_question_fields", {})
    names = list(QuestionDetailSerializer().fields)
    assert "market" not in names
    assert names[names.index("aggregates_url") + 1] == "download_url"
