"""The market's table in the analysts' downloads: every market's price history.

Forecasting owns the exports and their table registry (``forecasting.io.exports``); the market
joins it from ``MarketConfig.ready`` by importing this module, so forecasting never imports the
market. Price points are append-only: an export includes those up to its high-water mark.
"""

from __future__ import annotations

from collections.abc import Iterator

from forecasting.io.exports import DB_CHUNK_ROWS, Column, RowScope, Table, register_table
from forecasting.models import Question

from .models import PricePoint


def price_rows(scope: RowScope) -> Iterator[tuple]:
    """One row per price point of the export's questions' markets, oldest first per question."""
    rows = (
        PricePoint.objects.filter(market__question_id__in=scope.question_ids, pk__lte=scope.up_to)
        .order_by("market__question_id", "at", "pk")
        .values_list(
            "pk", "market_id", "market__question_id", "at", "prices", "trade_id", "market__question__question_type"
        )
    )
    for pk, market_id, question_id, at, prices, trade_id, qtype in rows.iterator(chunk_size=DB_CHUNK_ROWS):
        yes = prices[-1] if qtype == Question.Type.BINARY and prices else None
        yield pk, market_id, question_id, at, yes, prices, trade_id


MARKET = register_table(
    Table(
        "market",
        "The play-money market's price history (LMSR market maker): one row when the market opened and "
        "one after each trade. Prices are the market's probability of each outcome.",
        (
            Column("price_point_id", "integer", "Id of this price point."),
            Column("market_id", "integer", "The market (one per question)."),
            Column("question_id", "integer", "The question (questions.question_id)."),
            Column("at", "timestamp", "When the prices took these values."),
            Column(
                "price_yes",
                "float",
                "Price of YES for a yes/no question (the last element of prices); empty otherwise.",
            ),
            Column(
                "prices",
                "float_list",
                "Price of each outcome, in the order of questions.outcomes, as stored; they sum to 1.",
            ),
            Column("trade_id", "integer", "The trade that moved the prices; empty for the opening prices."),
        ),
        rows=price_rows,
        append_only=PricePoint,
    )
)
