"""What the market's API reads and writes: money, markets, quotes and trades.

Money and shares are exact integers in micro-units; the API shows each amount both ways
(``{"micro": 1500000, "units": "1.500000"}``) and takes amounts in units, at most six decimals.
"""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from forecasting.api.base import absolute_url
from forecasting.models import Question
from market import services
from market.models import MICRO, Market, Trade

# --- money -------------------------------------------------------------------------------------------


def micro_to_units(micro: int) -> str:
    """An exact decimal string in units: 1500000 -> "1.500000", -1 -> "-0.000001"."""
    micro = int(micro)
    whole, fraction = divmod(abs(micro), MICRO)
    return f"{'-' if micro < 0 else ''}{whole}.{fraction:06d}"


@extend_schema_field(OpenApiTypes.INT64)
class Int64Field(serializers.IntegerField):
    """An integer documented as int64 in the schema (money in micro-units exceeds int32)."""


class MicroUnitsSerializer(serializers.Serializer):
    """An amount of play money (or of shares): exact integer micro-units, and the same in units."""

    micro = Int64Field(help_text="Integer micro-units (1 unit = 1,000,000 micro-units); exact.")
    units = serializers.DecimalField(
        max_digits=24,
        decimal_places=6,
        help_text='The same amount in units, as an exact decimal string with six decimals (e.g. `"1.500000"`).',
    )


@extend_schema_field(MicroUnitsSerializer)
class MicroUnitsField(serializers.Field):
    """Renders an integer of micro-units as ``{"micro": 1500000, "units": "1.500000"}``."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return {"micro": int(value), "units": micro_to_units(value)}


class UnitsInputField(serializers.DecimalField):
    """An amount sent in units (at most six decimals: one micro-unit); validated to micro-units."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 6)
        kwargs.setdefault("min_value", Decimal("0.000001"))
        kwargs.setdefault("max_value", Decimal(10) ** 9)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty) -> int | None:
        value = super().run_validation(data)  # a Decimal in units, its bounds checked
        return None if value is None else int(value * MICRO)


# --- markets -----------------------------------------------------------------------------------------


def outcome_labels(question: Question) -> list[str]:
    if question.is_binary:
        return ["No", "Yes"]
    return [option.label for option in question.options.all()]


class MarketOutcomeSerializer(serializers.Serializer):
    outcome = serializers.IntegerField(help_text="Outcome index: 0 = NO, 1 = YES, or the option's position.")
    label = serializers.CharField()
    price = serializers.FloatField(help_text="Current price, the market's probability of this outcome.")


class MarketSerializer(serializers.ModelSerializer):
    subsidy = MicroUnitsField(help_text="The maker's worst-case loss.")
    outcomes = serializers.SerializerMethodField()
    quote_url = serializers.SerializerMethodField()

    class Meta:
        model = Market
        fields = ["id", "status", "subsidy", "resolved_outcome", "outcomes", "quote_url"]

    @extend_schema_field(MarketOutcomeSerializer(many=True))
    def get_outcomes(self, market: Market) -> list[dict]:
        labels = outcome_labels(market.question)
        prices = services.market_prices(market)
        return [{"outcome": i, "label": labels[i], "price": price} for i, price in enumerate(prices)]

    def get_quote_url(self, market: Market) -> str:
        url = reverse("api:market-quote", kwargs={"pk": market.question_id})
        return absolute_url(self.context.get("request"), url)


# --- quotes and trades -------------------------------------------------------------------------------


SIDES = [("buy", "Buy"), ("sell", "Sell")]


class QuoteQuerySerializer(serializers.Serializer):
    outcome = serializers.IntegerField(min_value=0, help_text="0 = NO, 1 = YES, or the option's position.")
    side = serializers.ChoiceField(choices=SIDES)
    amount = UnitsInputField(help_text="Buy: the money to spend, in units (give `amount` or `shares`).")
    shares = UnitsInputField(help_text="The number of shares to buy or sell (give `amount` or `shares`).")


class QuoteSerializer(serializers.Serializer):
    outcome = serializers.IntegerField()
    side = serializers.ChoiceField(choices=SIDES)
    shares = MicroUnitsField(help_text="Shares bought or sold.")
    cost = MicroUnitsField(help_text="What the trader pays; negative for a sale (the proceeds).")
    average_price = serializers.FloatField()
    price_before = serializers.FloatField()
    price_after = serializers.FloatField()
    prices_after = serializers.ListField(child=serializers.FloatField(), help_text="Every outcome's price after.")


class TradeCreateSerializer(QuoteQuerySerializer):
    question = serializers.PrimaryKeyRelatedField(queryset=Question.objects.none())
    limit_price = serializers.FloatField(
        required=False, min_value=0, max_value=1, help_text="Refuse if the average price is worse than this."
    )
    min_shares = UnitsInputField(help_text="Buy by amount: refuse if it buys fewer shares.")
    max_cost = UnitsInputField(help_text="Buy by shares: refuse if it costs more.")
    idempotency_key = serializers.CharField(
        required=False,
        max_length=80,
        help_text="Or the `Idempotency-Key` header: a retried request with the same key returns the first trade.",
    )

    field_order = ["question", "outcome", "side", "amount", "shares", "limit_price", "min_shares", "max_cost"]

    def __init__(self, *args, questions=None, **kwargs):
        super().__init__(*args, **kwargs)
        if questions is not None:
            self.fields["question"].queryset = questions

    def validate_question(self, question: Question) -> Question:
        if not Market.objects.filter(question=question).exists():
            raise serializers.ValidationError("This question has no market (it has not opened yet).")
        return question


class TradeSerializer(serializers.ModelSerializer):
    question = serializers.IntegerField(source="market.question_id", read_only=True)
    market = serializers.IntegerField(source="market_id", read_only=True)
    side = serializers.SerializerMethodField()
    shares = MicroUnitsField(help_text="Shares bought (positive) or sold (negative).")
    cost = MicroUnitsField(help_text="Paid (positive), or received for a sale (negative).")

    class Meta:
        model = Trade
        fields = [
            "id",
            "question",
            "market",
            "outcome",
            "side",
            "shares",
            "cost",
            "price_before",
            "price_after",
            "idempotency_key",
            "created_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=SIDES))
    def get_side(self, trade: Trade) -> str:
        return "buy" if trade.shares > 0 else "sell"
