import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from market import services
from market.models import MICRO, Account, LedgerTransaction, Trade

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


def test_portfolio_and_profit_leaderboard(reader_client, reader, market):
    services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", amount=10 * MICRO, idempotency_key="a"
    )
    portfolio = reader_client.get(reverse("portfolio")).content.decode()
    assert market.question.title in portfolio and "990.00" in portfolio
    board = reader_client.get(reverse("market_leaderboard")).content.decode()
    assert reader.username in board


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
