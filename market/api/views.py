"""The market's API views: thin, like the web's. Validate the input, call one service, serialize the result."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from forecasting.api.base import OWN_DATA, PUBLIC_READ, ApiView, validated
from forecasting.api.permissions import visible_question_or_404, visible_questions
from market import services
from market.models import Market, Trade

from . import filters
from . import serializers as s


@extend_schema(
    tags=["market"],
    summary="Quote a trade",
    description="What buying (by `amount` or `shares`) or selling (`shares`) would cost now; nothing is written. "
    "Amounts in units, at most six decimals. Public.",
    parameters=[s.QuoteQuerySerializer],
    responses={200: s.QuoteSerializer},
)
class MarketQuote(ApiView, APIView):
    error_codes = PUBLIC_READ

    def get(self, request, pk: int):
        market = Market.objects.filter(question=visible_question_or_404(request, pk)).first()
        if market is None:
            raise NotFound("This question has no market (it has not opened yet).")
        data = validated(s.QuoteQuerySerializer, request.query_params)
        try:
            quote = services.market_quote(
                market=market,
                outcome=data["outcome"],
                side=data["side"],
                shares=data.get("shares"),
                amount=data.get("amount"),
            )
        except ValueError as error:  # lmsr's own checks (e.g. a sale that can't raise that much)
            raise ValidationError(str(error)) from None
        return Response(s.QuoteSerializer(quote).data)


IDEMPOTENCY_HEADER = "Idempotency-Key"


@extend_schema_view(
    get=extend_schema(summary="My trades", description="The signed-in reader's trades, newest first."),
    post=extend_schema(
        summary="Trade",
        description="Buy by `amount` or `shares`, or sell `shares`, on the question's market. Needs an idempotency "
        f"key (the `{IDEMPOTENCY_HEADER}` header or the `idempotency_key` field): a retry with the same key returns "
        "the first trade (200, header `Idempotent-Replayed: true`) instead of trading again.",
        request=s.TradeCreateSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="At most 80 characters; unique per trade you mean to make.",
            )
        ],
        responses={
            201: s.TradeSerializer,
            200: OpenApiResponse(s.TradeSerializer, description="A retry: the trade made the first time."),
        },
    ),
)
class Trades(ApiView, generics.ListCreateAPIView):
    throttle_scope = "trades"
    queryset = Trade.objects.none()
    serializer_class = s.TradeSerializer
    filterset_class = filters.TradeFilter
    permission_classes = [IsAuthenticated]
    error_codes = OWN_DATA

    def get_queryset(self):
        return Trade.objects.filter(user=self.request.user).select_related("market").order_by("-created_at", "-id")

    def _idempotency_key(self, request, data: dict) -> str:
        header, field = request.headers.get(IDEMPOTENCY_HEADER), data.get("idempotency_key")
        if header and field and header != field:
            raise ValidationError({"idempotency_key": f"The {IDEMPOTENCY_HEADER} header and this field differ."})
        key = header or field
        if not key:
            raise ValidationError(
                {
                    "idempotency_key": f"Send an {IDEMPOTENCY_HEADER} header (or this field) so that a retried "
                    "request cannot trade twice."
                }
            )
        if len(key) > 80:
            raise ValidationError({"idempotency_key": "At most 80 characters."})
        return key

    def create(self, request, *args, **kwargs):
        data = validated(s.TradeCreateSerializer, request.data, questions=visible_questions(request.user))
        key = self._idempotency_key(request, data)
        market = Market.objects.get(question=data["question"])
        replay = Trade.objects.filter(user=request.user, idempotency_key=key).exists()
        trade = services.trade_execute(
            user=request.user,
            market_id=market.pk,
            outcome=data["outcome"],
            side=data["side"],
            idempotency_key=key,
            shares=data.get("shares"),
            amount=data.get("amount"),
            limit_price=data.get("limit_price"),
            min_shares=data.get("min_shares"),
            max_cost=data.get("max_cost"),
        )
        trade.market = market
        if replay:
            return Response(s.TradeSerializer(trade).data, headers={"Idempotent-Replayed": "true"})
        return Response(s.TradeSerializer(trade).data, status=status.HTTP_201_CREATED)
