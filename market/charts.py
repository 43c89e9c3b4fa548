"""The market's price on forecasting's question chart (``forecasting.views.charts``).

Registered when imported (from ``MarketConfig.ready()``): a binary question's chart shows P(YES) at
the market maker's prices after every trade.
"""

from __future__ import annotations

import datetime as dt

from forecasting.models import Question
from forecasting.services.history import Series
from forecasting.views.charts import register_chart_series

from .models import Market, PricePoint


def price_series(question: Question, since: dt.datetime | None) -> Series | None:
    """P(YES) at the market's prices over time, from ``since`` (led by the price then)."""
    if not question.is_binary:
        return None
    market = Market.objects.filter(question=question).only("id").first()
    if market is None:
        return None
    points = PricePoint.objects.filter(market=market).order_by("at", "id")
    rows = list(
        points.values_list("at", "prices")
        if since is None
        else points.filter(at__gte=since).values_list("at", "prices")
    )
    if since is not None:
        before = points.filter(at__lt=since).order_by("-at", "-id").values_list("prices", flat=True).first()
        if before is not None:
            rows.insert(0, (since, before))
    if not rows:
        return None
    return Series(
        "market",
        "Market price",
        [round(at.timestamp(), 3) for at, _ in rows],
        [round(float(prices[-1]), 4) for _, prices in rows],
    )


register_chart_series("market", price_series)
