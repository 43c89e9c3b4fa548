"""What readers see of their money: positions valued at current prices, and the profit leaderboard."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings

from forecasting.models import Question
from forecasting.services.profiles import DELETED_LABEL, is_deleted_username, public_label

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


PRIVATE_TRADER = "Private trader"  # a reader without a public profile: no name, no link (defect 8)


def profit_leaderboard(*, limit: int = 50, viewer=None) -> list[dict]:
    """Readers by profit: balance plus open positions at current prices, minus what they were granted.

    Three queries whatever the number of traders (accounts, debts, open positions with their
    markets). Readers who did not choose a public profile are listed as ``PRIVATE_TRADER``; the
    viewer always sees their own name. Rows: label, username (None unless shown), is_you, profit, worth.
    """
    accounts = Account.objects.filter(kind=Account.Kind.USER).values_list(
        "user_id",
        "balance",
        "user__username",
        "user__forecaster_profile__is_public",
        "user__forecaster_profile__display_name",
    )
    debts = dict(Account.objects.filter(kind=Account.Kind.DEBT).values_list("user_id", "balance"))
    held: dict[int, int] = defaultdict(int)
    prices: dict[int, list[float]] = {}
    open_positions = Position.objects.filter(
        market__status__in=(Market.Status.OPEN, Market.Status.CLOSED), shares__gt=0
    ).select_related("market")
    for position in open_positions:
        market = position.market
        if market.pk not in prices:
            prices[market.pk] = market_prices(market)
        held[position.user_id] += int(position.shares * prices[market.pk][position.outcome])
    viewer_id = viewer.pk if viewer is not None and viewer.is_authenticated else None
    ranked = []
    for user_id, balance, username, is_public, display_name in accounts:
        worth = balance + debts.get(user_id, 0) + held[user_id]
        ranked.append(
            (-(worth - settings.MARKET_STARTING_GRANT), user_id, username, bool(is_public), display_name or "", worth)
        )
    # Ties break on the user id, not the name: an order by name would hint at private readers' names.
    ranked.sort()
    rows = []
    for negative_profit, user_id, username, is_public, display_name, worth in ranked[:limit]:
        # A deleted account (anonymised, its money kept so the totals stay whole) is never named or linked.
        shown = (is_public or user_id == viewer_id) and not is_deleted_username(username)
        label = public_label(username=username, display_name=display_name, shown=True) if shown else PRIVATE_TRADER
        if is_deleted_username(username):
            label = DELETED_LABEL
        rows.append(
            {
                "label": label,
                "username": username if shown else None,
                "is_you": user_id == viewer_id,
                "profit": -negative_profit,
                "worth": worth,
            }
        )
    return rows
