"""The market's price as an informed source of forecasting's Bayesian aggregate (``forecasting.sources``):
the current P(YES) of a yes/no question's market, open or closed, before it settles."""

from __future__ import annotations

from forecasting.sources import MARKET, register_price_source

from . import lmsr
from .models import Market


def market_price_yes(question_id: int) -> float | None:
    row = (
        Market.objects.filter(question_id=question_id, status__in=[Market.Status.OPEN, Market.Status.CLOSED])
        .values_list("shares", "liquidity")
        .first()
    )
    if row is None or len(row[0]) != 2:
        return None  # no market, a settled one, or a multiple-choice one
    return float(lmsr.prices(row[0], row[1])[1])


register_price_source(MARKET, market_price_yes)
