"""The ``market`` field of forecasting's question API (``forecasting.api.extensions``).

Forecasting does not know the market; importing this module (``MarketConfig.ready()``) adds the
question's market, with its prices, to the question's detail.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from forecasting.api.extensions import register_question_field
from forecasting.models import Question
from market.models import Market

from .serializers import MarketSerializer


@extend_schema_field(MarketSerializer(allow_null=True))
class MarketField(serializers.Field):
    """The question's market (null until the question has opened), read from the question."""

    def __init__(self, **kwargs):
        kwargs.update(source="*", read_only=True)
        kwargs.setdefault("help_text", "The play-money market, once the question has opened.")
        super().__init__(**kwargs)

    def to_representation(self, question: Question) -> dict | None:
        market = Market.objects.filter(question=question).first()
        if market is None:
            return None
        market.question = question
        return MarketSerializer(market, context=self.context).data


register_question_field("market", MarketField)
