import math
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from forecasting import services as forecasting_services
from market import services
from market.models import MICRO, Account, LedgerTransaction, Market, Trade
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(question):
    return services.market_create(question=question)


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client


def test_live_quote_is_a_dry_run(client, market):
    response = client.get(
        reverse("market_quote", args=[market.question_id]), {"side": "buy", "outcome": 1, "amount": "25"}
    )
    body = response.json()
    assert response.status_code == 200
    assert body["cost"] <= 25 and body["shares"] > 25  # shares at below 1 each
    assert 0.5 < body["price_after"] < 1
    assert not Trade.objects.exists()


@pytest.mark.parametrize(
    "params",
    [
        {"side": "buy", "outcome": 1, "amount": "abc"},
        {"side": "buy", "outcome": 7, "amount": "5"},
        {"side": "buy", "outcome": 1},
    ],
)
def test_bad_quote_is_a_clear_400(client, market, params):
    response = client.get(reverse("market_quote", args=[market.question_id]), params)
    assert response.status_code == 400 and response.json()["errors"]


def test_trade_through_the_page_and_a_retry_trades_once(reader_client, reader, market):
    page = reader_client.get(market.question.get_absolute_url()).content.decode()
    assert 'id="market"' in page and "Your balance: 1000.00" in page
    data = {"side": "buy", "outcome": 1, "amount": "25", "idempotency_key": "k-123"}
    first = reader_client.post(reverse("market_trade", args=[market.question_id]), data, follow=True)
    reader_client.post(reverse("market_trade", args=[market.question_id]), data)
    assert "Bought" in first.content.decode()
    assert Trade.objects.count() == 1
    assert services.account_for_user(user=reader).balance == settings.MARKET_STARTING_GRANT - 25 * MICRO
    page = reader_client.get(market.question.get_absolute_url()).content.decode()
    assert "Your position" in page and "Market: <strong>" in page


def test_a_question_without_a_market_shows_no_market_panel(client, question):
    page = client.get(question.get_absolute_url()).content.decode()
    assert 'id="market"' not in page and "Market: <strong>" not in page


def test_trade_errors_are_shown_and_change_nothing(reader_client, market):
    response = reader_client.post(
        reverse("market_trade", args=[market.question_id]), {"side": "sell", "outcome": 1, "shares": "5"}, follow=True
    )
    assert "can&#x27;t sell more" in response.content.decode() or "can't sell more" in response.content.decode()
    assert not Trade.objects.exists()


def test_anonymous_trade_goes_to_login(client, market):
    response = client.post(
        reverse("market_trade", args=[market.question_id]), {"side": "buy", "outcome": 1, "amount": "5"}
    )
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_forged_trade_without_csrf_is_refused(reader, market):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reader)
    response = client.post(
        reverse("market_trade", args=[market.question_id]), {"side": "buy", "outcome": 1, "amount": "5"}
    )
    assert response.status_code == 403 and not Trade.objects.exists()


def test_portfolio_lists_the_position_and_the_balance(reader_client, reader, market):
    services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", amount=10 * MICRO, idempotency_key="a"
    )
    portfolio = reader_client.get(reverse("portfolio")).content.decode()
    assert market.question.title in portfolio and "990.00" in portfolio


def leaderboard_rows(html: str) -> list[tuple[str, str, str, str, bool]]:
    """The board's table rows as (rank, trader as shown, profit, net worth, is the viewer's row)."""
    table = html[html.index('<table class="history leaderboard">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr( class=\"you\")?><td>(\d+)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    return [
        (rank, re.sub(r"<[^>]+>", "", trader), profit, worth, bool(you)) for you, rank, trader, profit, worth in rows
    ]


def test_the_market_leaderboard_ranks_traders_by_profit_at_current_prices(reader_client, reader, market, client):
    # Bob (public, "Bob B.") buys 40 units of NO, the reader 10 of YES. Each one's profit is what their shares
    # are worth at the prices after both trades (an LMSR's softmax of q / b, written out here) less what they
    # paid; net worth is the starting grant plus the profit.
    bob = UserFactory(username="bob")
    forecasting_services.profile_update(user=bob, is_public=True, display_name="Bob B.")
    services.trade_execute(user=bob, market_id=market.pk, outcome=0, side="buy", amount=40 * MICRO, idempotency_key="b")
    services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", amount=10 * MICRO, idempotency_key="a"
    )
    bob_trade, reader_trade = Trade.objects.get(user=bob), Trade.objects.get(user=reader)
    b = Market.objects.get(pk=market.pk).liquidity
    q_no, q_yes = bob_trade.shares, reader_trade.shares
    p_no = 1 / (1 + math.exp((q_yes - q_no) / b))
    bob_profit = int(q_no * p_no) - bob_trade.cost
    reader_profit = int(q_yes * (1 - p_no)) - reader_trade.cost
    assert bob_profit > reader_profit  # Bob's larger buy moved the price his way more

    def units(micro: int) -> str:
        return f"{Decimal(micro) / MICRO:,.2f}"

    grant = settings.MARKET_STARTING_GRANT
    rows = leaderboard_rows(reader_client.get(reverse("market_leaderboard")).content.decode())
    assert rows == [
        ("1", "Bob B.", units(bob_profit), units(grant + bob_profit), False),
        ("2", "alice (you)", units(reader_profit), units(grant + reader_profit), True),
    ]
    # a visitor sees the same board, the reader (private by default) unnamed
    rows = leaderboard_rows(client.get(reverse("market_leaderboard")).content.decode())
    assert [(rank, trader, you) for rank, trader, _, _, you in rows] == [
        ("1", "Bob B.", False),
        ("2", "Private trader", False),
    ]


def test_the_market_leaderboard_says_when_there_are_no_traders(client):
    page = client.get(reverse("market_leaderboard")).content.decode()
    assert leaderboard_rows(page) == [] and "No traders yet." in page


def test_a_new_readers_page_views_write_no_money(reader_client, reader, market):
    """The question page and the portfolio show the starting grant without opening the account."""
    transactions = LedgerTransaction.objects.count()
    page = reader_client.get(market.question.get_absolute_url()).content.decode()
    assert f"Your balance: {settings.MARKET_STARTING_GRANT / MICRO:.2f}" in page
    portfolio = reader_client.get(reverse("portfolio")).content.decode()
    assert f"Balance: <strong>{settings.MARKET_STARTING_GRANT / MICRO:,.2f}</strong>" in portfolio
    assert not Account.objects.filter(user=reader).exists()
    assert LedgerTransaction.objects.count() == transactions


def test_the_panel_shows_the_balance_of_an_existing_account(reader_client, reader, market):
    services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", amount=25 * MICRO, idempotency_key="k"
    )
    balance = Account.objects.get(user=reader, kind=Account.Kind.USER).balance
    assert balance < settings.MARKET_STARTING_GRANT
    page = reader_client.get(market.question.get_absolute_url()).content.decode()
    assert f"Your balance: {balance / MICRO:.2f}" in page
