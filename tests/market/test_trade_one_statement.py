"""PostgreSQL's trade in one statement (``market_trade_apply``, issue 23): what it writes, that it
never applies a price computed on another state, and that whatever it declines it leaves untouched
for the generic path (whose behaviour tests/market/test_services.py pins on every database)."""

import datetime as dt
import json
import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.models import AggregateState
from market import lmsr, services
from market.models import MICRO, Account, LedgerEntry, LedgerTransaction, Market, Position, PricePoint, Trade
from market.services import trading
from tests.factories import QuestionFactory, UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement trade is PostgreSQL's"),
]


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def market(question):
    market = services.market_create(question=question)
    # A Bayesian update already requested (else the first trade goes the generic way to request it).
    AggregateState.objects.update_or_create(question=question, defaults={"bayes_pending": True})
    return market


@pytest.fixture
def trader(reader):
    services.account_for_user(user=reader)  # a first trade opens the account the generic way
    return reader


@pytest.fixture
def one_statement_only(monkeypatch):
    """The generic path fails the test: every trade here must be the one statement's."""

    def generic(*args):
        raise AssertionError("the trade ran the generic path")

    monkeypatch.setattr(trading, "_trade_locked", generic)


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (LedgerTransaction, LedgerEntry, Trade, Position, PricePoint))


def test_one_statement_writes_the_whole_trade(trader, market, one_statement_only):
    before = services.account_for_user(user=trader).balance
    trade = services.trade_execute(
        user=trader, market_id=market.pk, outcome=1, side="buy", amount=10 * MICRO, idempotency_key="k1"
    )
    quote = lmsr.quote_buy_amount([0, 0], market.liquidity, 1, 10 * MICRO)
    stored = Trade.objects.get(pk=trade.pk)
    fields = ("market_id", "user_id", "outcome", "shares", "cost", "price_before", "price_after", "idempotency_key")
    for field in fields:
        assert getattr(stored, field) == getattr(trade, field), field
    assert (stored.shares, stored.cost, stored.price_after) == (quote.shares, quote.cost, quote.price_after)
    entries = dict(stored.ledger_transaction.entries.values_list("account_id", "amount"))
    assert entries == {services.account_for_user(user=trader).pk: -quote.cost, market.maker_id: quote.cost}
    assert services.account_for_user(user=trader).balance == before - quote.cost
    market.refresh_from_db()
    assert market.shares == [0, quote.shares]
    position = Position.objects.get(market=market, user=trader, outcome=1)
    assert (position.shares, position.invested) == (quote.shares, quote.cost)
    assert PricePoint.objects.get(trade_id=trade.pk).prices == quote.prices_after

    sale = services.trade_execute(
        user=trader, market_id=market.pk, outcome=1, side="sell", shares=quote.shares // 2, idempotency_key="k2"
    )
    assert sale.cost == lmsr.quote_sell_shares([0, quote.shares], market.liquidity, 1, quote.shares // 2).cost
    assert sale.cost < 0 and sale.shares == -(quote.shares // 2)
    market.refresh_from_db()
    assert market.shares == [0, quote.shares - quote.shares // 2]


@pytest.mark.parametrize("seen", [[0, 0], [5 * MICRO, 0], None])
def test_a_trade_priced_on_a_stale_state_is_priced_again(trader, market, one_statement_only, seen):
    """Another process traded since this one last saw the market: never a lost update."""
    services.trade_execute(
        user=trader, market_id=market.pk, outcome=1, side="buy", amount=7 * MICRO, idempotency_key=key()
    )
    market.refresh_from_db()
    if seen is None:
        trading._seen.pop(market.pk, None)
    else:
        trading._seen[market.pk] = (market.liquidity, seen)
    trade = services.trade_execute(
        user=trader, market_id=market.pk, outcome=0, side="buy", amount=3 * MICRO, idempotency_key=key()
    )
    quote = lmsr.quote_buy_amount(market.shares, market.liquidity, 0, 3 * MICRO)
    assert (trade.shares, trade.cost, trade.price_before) == (quote.shares, quote.cost, quote.price_before)
    assert trading._seen[market.pk][1] == [trade.shares, market.shares[1]]


def apply(market: Market, user, *, shares: int = MICRO, cost: int = MICRO, idempotency_key: str = "", at=None) -> str:
    """Call the function as the service does, priced on the market's current state."""
    market.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute(
            trading._APPLY,
            [
                market.pk,
                user.pk,
                1,
                shares,
                cost,
                market.liquidity,
                json.dumps(market.shares),
                0.5,
                0.5,
                "[0.5, 0.5]",
                idempotency_key or key(),
                "test",
                at or timezone.now(),
            ],
        )
        return cursor.fetchone()[0]


def test_the_function_applies_a_fresh_trade(trader, market):
    before = counts()
    assert apply(market, trader) == "ok"
    assert counts() == tuple(n + d for n, d in zip(before, (1, 2, 1, 1, 1), strict=True))


@pytest.mark.parametrize(
    "case",
    ["closed", "not yet open", "key used", "too few shares", "too little money", "no account", "bayes update due"],
)
def test_what_the_function_declines_it_leaves_untouched(reader, market, case):
    """Each refusal, retry or extra duty is the generic path's: the function writes nothing."""
    kwargs: dict = {}
    if case != "no account":
        services.account_for_user(user=reader)
    if case == "closed":
        Market.objects.filter(pk=market.pk).update(status=Market.Status.CLOSED)
    elif case == "not yet open":
        kwargs["at"] = market.question.opens_at - dt.timedelta(seconds=1)
    elif case == "key used":
        assert apply(market, reader, idempotency_key="once") == "ok"
        kwargs["idempotency_key"] = "once"
    elif case == "too few shares":
        kwargs.update(shares=-MICRO, cost=-MICRO // 2)
    elif case == "too little money":
        kwargs["cost"] = services.account_for_user(user=reader).balance + 1
    elif case == "bayes update due":
        AggregateState.objects.filter(question=market.question).update(bayes_pending=False)
    before = counts(), list(Account.objects.order_by("pk").values_list("balance", flat=True))
    market.refresh_from_db()
    shares = market.shares
    assert apply(market, reader, **kwargs) == "fallback"
    assert (counts(), list(Account.objects.order_by("pk").values_list("balance", flat=True))) == before
    market.refresh_from_db()
    assert market.shares == shares


def test_the_generic_path_then_decides(trader, market):
    """Through the service: a retry returns the first trade, and a due Bayesian update is requested."""
    first = services.trade_execute(
        user=trader, market_id=market.pk, outcome=1, side="buy", amount=5 * MICRO, idempotency_key="again"
    )
    again = services.trade_execute(
        user=trader, market_id=market.pk, outcome=1, side="buy", amount=5 * MICRO, idempotency_key="again"
    )
    assert again.pk == first.pk and Trade.objects.count() == 1
    AggregateState.objects.filter(question=market.question).update(bayes_pending=False)
    services.trade_execute(user=trader, market_id=market.pk, outcome=1, side="buy", amount=MICRO, idempotency_key=key())
    assert AggregateState.objects.get(question=market.question).bayes_pending


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.booleans(), st.integers(1, 30), st.sampled_from([None, [0, 0], [MICRO, 0]])),
        min_size=1,
        max_size=12,
    )
)
def test_any_sequence_equals_a_serial_replay(trader, market, one_statement_only, steps):
    """Whatever this process believed the market's state was, each trade is priced on the real one."""
    total = Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"]
    for outcome, selling, size, seen in steps:
        if seen is not None:
            trading._seen[market.pk] = (market.liquidity, seen)
        held = Position.objects.filter(market=market, user=trader, outcome=outcome).values_list("shares", flat=True)
        held = held.first() or 0
        if selling and held:
            services.trade_execute(
                user=trader,
                market_id=market.pk,
                outcome=outcome,
                side="sell",
                shares=max(1, held * size // 30),
                idempotency_key=key(),
            )
        else:
            services.trade_execute(
                user=trader,
                market_id=market.pk,
                outcome=outcome,
                side="buy",
                amount=size * MICRO,
                idempotency_key=key(),
            )
    q = [0, 0]
    for trade in Trade.objects.filter(market=market).order_by("id"):
        if trade.shares > 0:
            assert trade.cost == lmsr.quote_buy_shares(q, market.liquidity, trade.outcome, trade.shares).cost
        else:
            assert trade.cost == lmsr.quote_sell_shares(q, market.liquidity, trade.outcome, -trade.shares).cost
        q[trade.outcome] += trade.shares
    market.refresh_from_db()
    assert market.shares == q
    assert Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"] == total


@pytest.mark.django_db(transaction=True)
def test_a_key_racing_on_another_market_writes_nothing():
    """The same reader and key on two markets at once: the second waits for the first on the unique
    index, then takes back its ledger transaction and declines (the generic path then refuses it)."""
    user = UserFactory()
    services.account_for_user(user=user)
    first, second = (services.market_create(question=QuestionFactory()) for _ in range(2))
    for market in (first, second):
        AggregateState.objects.update_or_create(question=market.question, defaults={"bayes_pending": True})
    inserted, answered = threading.Event(), []

    def racer():
        try:
            inserted.wait(10)
            answered.append(apply(second, user, idempotency_key="raced"))
        finally:
            connections.close_all()

    thread = threading.Thread(target=racer)
    thread.start()
    with transaction.atomic():
        assert apply(first, user, idempotency_key="raced") == "ok"
        inserted.set()
        thread.join(0.5)  # the racer is waiting on the index
        assert thread.is_alive()
    thread.join(10)
    assert answered == ["fallback"]
    assert Trade.objects.filter(idempotency_key="raced").count() == 1
    assert LedgerTransaction.objects.filter(market=second, kind=LedgerTransaction.Kind.TRADE).count() == 0
