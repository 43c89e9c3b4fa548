import uuid

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Sum

from forecasting import services as forecasting
from forecasting.models import Question
from market import services
from market.models import MICRO, Account, LedgerEntry, LedgerTransaction, Market, Position, Trade
from tests.factories import QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


def key() -> str:
    return uuid.uuid4().hex


def buy(user, market, outcome=1, amount=10 * MICRO, **kwargs):
    return services.trade_execute(
        user=user, market_id=market.pk, outcome=outcome, side="buy", amount=amount, idempotency_key=key(), **kwargs
    )


def sell(user, market, outcome, shares, **kwargs):
    return services.trade_execute(
        user=user, market_id=market.pk, outcome=outcome, side="sell", shares=shares, idempotency_key=key(), **kwargs
    )


def circulating() -> int:
    """Money outside the mint: readers, their debts and the makers."""
    return Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"] or 0


def assert_ledger_consistent():
    for txn in LedgerTransaction.objects.all():
        assert sum(txn.entries.values_list("amount", flat=True)) == 0, txn
    for account in Account.objects.all():
        total = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
        assert account.balance == total, account


@pytest.fixture
def market(question):
    return services.market_create(question=question)


def test_new_reader_gets_the_starting_grant(reader):
    account = services.account_for_user(user=reader)
    assert account.balance == settings.MARKET_STARTING_GRANT
    assert services.account_for_user(user=reader).pk == account.pk  # once
    assert_ledger_consistent()


def test_market_opens_with_the_question_funded_by_the_subsidy(editor):
    question = QuestionFactory(status=Question.Status.DRAFT)
    forecasting.question_open(question=question, actor=editor)
    market = Market.objects.get(question=question)
    assert market.maker.balance == market.subsidy == settings.MARKET_DEFAULT_SUBSIDY
    assert services.market_prices(market) == pytest.approx([0.5, 0.5])


def test_buying_moves_the_price_and_money_balances(reader, market):
    trade = buy(reader, market, outcome=1, amount=50 * MICRO)
    market.refresh_from_db()
    assert trade.cost <= 50 * MICRO and trade.shares > 0
    assert services.market_prices(market)[1] > 0.5
    assert services.account_for_user(user=reader).balance == settings.MARKET_STARTING_GRANT - trade.cost
    position = Position.objects.get(user=reader, market=market, outcome=1)
    assert (position.shares, position.invested) == (trade.shares, trade.cost)
    assert market.price_history.count() == 2
    assert_ledger_consistent()


def test_retried_trade_with_the_same_key_trades_once(reader, market):
    k = key()
    first = services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", amount=MICRO, idempotency_key=k
    )
    again = services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", amount=MICRO, idempotency_key=k
    )
    assert first.pk == again.pk and Trade.objects.count() == 1
    with pytest.raises(ValidationError, match="different trade"):
        services.trade_execute(user=reader, market_id=market.pk, outcome=0, side="buy", amount=MICRO, idempotency_key=k)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"outcome": 5, "side": "buy", "amount": MICRO}, "Unknown outcome"),
        ({"outcome": 1, "side": "buy", "amount": 0}, "positive"),
        ({"outcome": 1, "side": "buy", "amount": -5}, "positive"),
        ({"outcome": 1, "side": "hold", "amount": MICRO}, "buy or to sell"),
        ({"outcome": 1, "side": "buy"}, "either a number of shares or an amount"),
        ({"outcome": 1, "side": "sell", "shares": MICRO}, "can't sell more"),
        ({"outcome": 1, "side": "buy", "amount": 10_000 * MICRO}, "Insufficient balance"),
    ],
)
def test_bad_trades_are_refused_and_change_nothing(reader, market, kwargs, message):
    services.account_for_user(user=reader)
    before = circulating()
    with pytest.raises(ValidationError, match=message):
        services.trade_execute(user=reader, market_id=market.pk, idempotency_key=key(), **kwargs)
    assert Trade.objects.count() == 0 and circulating() == before
    market.refresh_from_db()
    assert market.shares == [0, 0]


def test_slippage_guard(reader, market):
    with pytest.raises(ValidationError):
        buy(reader, market, amount=100 * MICRO, limit_price=0.51)
    assert not Trade.objects.exists()


def test_no_trading_when_the_question_is_not_open(reader, market, editor):
    forecasting.question_close(question=market.question, actor=editor)
    with pytest.raises(ValidationError, match="closed"):
        buy(reader, market)


def test_buy_then_sell_never_profits(reader, market):
    trade = buy(reader, market, amount=40 * MICRO)
    back = sell(reader, market, 1, trade.shares)
    assert -back.cost <= trade.cost
    assert services.account_for_user(user=reader).balance <= settings.MARKET_STARTING_GRANT


def test_resolution_pays_winning_shares_and_unresolve_restores_every_balance(market, editor):
    yes_reader, no_reader = UserFactory.create_batch(2)
    yes_trade = buy(yes_reader, market, outcome=1, amount=30 * MICRO)
    buy(no_reader, market, outcome=0, amount=20 * MICRO)
    before = {a.pk: a.balance for a in Account.objects.all()}
    total = circulating()

    forecasting.question_resolve(question=market.question, actor=editor, outcome="yes")
    market.refresh_from_db()
    assert market.status == Market.Status.RESOLVED
    assert (
        services.account_for_user(user=yes_reader).balance
        == before[services.account_for_user(user=yes_reader).pk] + yes_trade.shares
    )
    assert circulating() == total
    assert market.maker.__class__.objects.get(pk=market.maker_id).balance >= 0

    forecasting.question_unresolve(question=market.question, actor=editor)
    assert {a.pk: a.balance for a in Account.objects.filter(pk__in=before)} == before
    market.refresh_from_db()
    assert market.status == Market.Status.CLOSED and market.settlement is None
    assert_ledger_consistent()

    # Resolving again, the other way, pays the other side.
    forecasting.question_resolve(question=market.question, actor=editor, outcome="no")
    assert circulating() == total
    assert_ledger_consistent()


def test_annulment_refunds_net_investment(market, editor):
    reader = UserFactory()
    buy(reader, market, outcome=1, amount=25 * MICRO)
    buy(reader, market, outcome=0, amount=5 * MICRO)
    forecasting.question_annul(question=market.question, actor=editor)
    assert services.account_for_user(user=reader).balance == settings.MARKET_STARTING_GRANT
    market.refresh_from_db()
    assert market.status == Market.Status.ANNULLED
    assert_ledger_consistent()


def test_spent_payout_is_owed_when_a_resolution_is_reversed(editor):
    first = QuestionFactory()
    other = QuestionFactory()
    m1, m2 = services.market_create(question=first), services.market_create(question=other)
    reader = UserFactory()
    trade = buy(reader, m1, outcome=1, amount=500 * MICRO)
    forecasting.question_resolve(question=first, actor=editor, outcome="yes")
    balance = services.account_for_user(user=reader).balance
    buy(reader, m2, outcome=1, amount=balance)  # spends everything, payout included
    total = circulating()
    forecasting.question_unresolve(question=first, actor=editor)
    account = services.account_for_user(user=reader)
    debt = services.account_for_user(user=reader, kind=Account.Kind.DEBT)
    assert account.balance >= 0 and debt.balance < 0
    assert account.balance + debt.balance <= trade.shares  # owes what it could not give back
    assert circulating() == total
    assert_ledger_consistent()


def test_multiple_choice_market(editor):
    question = multiple_choice_question(labels=("A", "B", "C"))
    market = services.market_create(question=question)
    assert services.market_prices(market) == pytest.approx([1 / 3] * 3)
    reader = UserFactory()
    trade = buy(reader, market, outcome=2, amount=10 * MICRO)
    forecasting.question_resolve(
        question=question, actor=editor, outcome="option", option_id=question.options.get(label="C").pk
    )
    assert services.account_for_user(user=reader).balance == settings.MARKET_STARTING_GRANT - trade.cost + trade.shares
