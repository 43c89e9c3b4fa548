"""What readers see of their money: positions valued at current prices, and the profit leaderboard."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from forecasting.models import Question

from ..models import Account, Market, Position
from .trading import market_prices


@dataclass(frozen=True)
class PositionView:
    market: Market
    outcome: int
    label: str
    shares: int
    invested: int
    value: int  # at current prices (or the payout once resolved)

    @property
    def profit(self) -> int:
        return self.value - self.invested


def _label(question: Question, outcome: int) -> str:
    if question.is_binary:
        return ("No", "Yes")[outcome]
    return question.options.all()[outcome].label


def portfolio(*, user) -> list[PositionView]:
    views = []
    positions = (
        Position.objects.filter(user=user).exclude(shares=0, invested=0).select_related("market", "market__question")
    )
    for position in positions:
        market = position.market
        if market.status == Market.Status.RESOLVED:
            value = position.shares if position.outcome == market.resolved_outcome else 0
        elif market.status == Market.Status.ANNULLED:
            value = position.invested
        else:
            value = int(position.shares * market_prices(market)[position.outcome])
        views.append(
            PositionView(
                market,
                position.outcome,
                _label(market.question, position.outcome),
                position.shares,
                position.invested,
                value,
            )
        )
    return views


def profit_leaderboard(*, limit: int = 50) -> list[dict]:
    """Readers by profit: balance plus open positions at current prices, minus what they were granted."""
    rows = []
    accounts = Account.objects.filter(kind=Account.Kind.USER).select_related("user")
    debts = dict(Account.objects.filter(kind=Account.Kind.DEBT).values_list("user_id", "balance"))
    for account in accounts:
        held = sum(
            v.value
            for v in portfolio(user=account.user)
            if v.market.status in (Market.Status.OPEN, Market.Status.CLOSED)
        )
        worth = account.balance + debts.get(account.user_id, 0) + held
        rows.append(
            {"username": account.user.username, "profit": worth - settings.MARKET_STARTING_GRANT, "worth": worth}
        )
    rows.sort(key=lambda r: (-r["profit"], r["username"]))
    return rows[:limit]
