"""The market joins forecasting's question API (``forecasting.api.extensions``) from ``MarketConfig.ready()``."""

import pytest

from forecasting.api import extensions
from forecasting.api.serializers import QuestionDetailSerializer
from market.api.fields import MarketField

pytestmark = pytest.mark.django_db


def test_the_market_registers_its_question_field():
    fields = extensions.question_fields()
    assert list(fields) == ["market"] and isinstance(fields["market"], MarketField)


def test_the_market_field_is_null_before_the_question_opens(question):
    names = list(QuestionDetailSerializer().fields)
    assert names.index("aggregates_url") + 1 == names.index("market") == names.index("download_url") - 1
    assert QuestionDetailSerializer(question).data["market"] is None
