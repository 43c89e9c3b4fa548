"""The market leaderboard: right profits, a fixed number of queries, and private readers unnamed (defect 8)."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from forecasting import services as forecasting_services
from market import services
from market.models import MICRO, Market
from market.services.portfolio import PRIVATE_TRADER
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


def trade(user, market, outcome, amount, n):
    services.trade_execute(
        user=user, market_id=market.pk, outcome=outcome, side="buy", amount=amount * MICRO, idempotency_key=f"k{n}"
    )


def expected_worth(user) -> int:
    """What the slow path (one portfolio per reader) says a reader is worth."""
    held = sum(
        v.value for v in services.portfolio(user=user) if v.market.status in (Market.Status.OPEN, Market.Status.CLOSED)
    )
    return services.account_balance(user=user) + held


def test_profits_are_balance_plus_open_positions_at_current_prices():
    markets = [services.market_create(question=QuestionFactory()) for _ in range(3)]
    traders = UserFactory.create_batch(4)
    n = 0
    for i, user in enumerate(traders):
        for j, market in enumerate(markets[: i + 1]):
            n += 1
            trade(user, market, (i + j) % 2, 5 + 3 * i, n)
    rows = services.profit_leaderboard()
    worth = {u.pk: expected_worth(u) for u in traders}
    assert sorted(r["worth"] for r in rows) == sorted(worth.values())
    assert all(r["profit"] == r["worth"] - settings.MARKET_STARTING_GRANT for r in rows)
    assert [r["profit"] for r in rows] == sorted((r["profit"] for r in rows), reverse=True)


def test_the_leaderboard_makes_the_same_queries_whatever_the_number_of_traders(django_assert_max_num_queries):
    markets = [services.market_create(question=QuestionFactory()) for _ in range(3)]
    traders = UserFactory.create_batch(15)
    for n, user in enumerate(traders):
        trade(user, markets[n % 3], n % 2, 4 + n, n)
        trade(user, markets[(n + 1) % 3], (n + 1) % 2, 3, 100 + n)
    # Accounts, debts, open positions with their markets: 3, where it used to be 2 per trader.
    with django_assert_max_num_queries(3):
        rows = services.profit_leaderboard()
    assert len(rows) == 15
    # The page adds the base template's own query.
    with django_assert_max_num_queries(4):
        assert Client().get(reverse("market_leaderboard")).status_code == 200


def test_private_traders_are_listed_without_their_name():
    market = services.market_create(question=QuestionFactory())
    hidden, shown = UserFactory(username="hidden-hal"), UserFactory(username="shown-sue")
    forecasting_services.profile_update(user=shown, is_public=True)
    trade(hidden, market, 1, 20, 1)
    trade(shown, market, 0, 10, 2)
    labels = {r["label"] for r in services.profit_leaderboard()}
    assert labels == {PRIVATE_TRADER, "shown-sue"}
    page = Client().get(reverse("market_leaderboard")).content.decode()
    assert "hidden-hal" not in page and PRIVATE_TRADER in page
    assert reverse("track_record", args=["shown-sue"]) in page
    client = Client()
    client.force_login(hidden)
    assert "hidden-hal</a> (you)" in client.get(reverse("market_leaderboard")).content.decode()
