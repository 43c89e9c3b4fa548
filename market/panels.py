"""The market's panel on forecasting's question page: prices (their history is a line of the question
chart: charts.py), the reader's position and the trade form, plus the "Market: x%" headline under the
community prediction.

Registered with forecasting's question-page extension point when imported (from ``MarketConfig.ready()``).
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest

from forecasting.models import Question
from forecasting.views.panels import register_question_panel

from . import services
from .models import MICRO, Market


def trade_panel_context(request: HttpRequest, question: Question) -> dict | None:
    """What the market panel shows on this question's page; ``None`` (no panel) without a market."""
    market = Market.objects.filter(question=question).first()
    if market is None:
        return None
    prices = services.market_prices(market)
    labels = ["No", "Yes"] if question.is_binary else [o.label for o in question.options.all()]
    context = {
        "market": market,
        "market_outcomes": [{"index": i, "label": labels[i], "price": p} for i, p in enumerate(prices)],
        "market_probability": prices[-1] if question.is_binary else None,
        "trade_key": uuid.uuid4().hex,
    }
    if request.user.is_authenticated:
        context["balance"] = services.account_balance(user=request.user) / MICRO
        context["my_positions"] = [v for v in services.portfolio(user=request.user) if v.market.pk == market.pk]
    return context


register_question_panel(
    "market",
    template="market/_panel.html",
    headline_template="market/_headline.html",
    context=trade_panel_context,
)
