"""32 threads trading at once: the result must equal a serial replay of the committed trades.

Runs on whatever database is configured: PostgreSQL in CI (row locks really contend), SQLite
locally (writers serialise on the database lock).
"""

import random
import threading
import uuid

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.models import Sum

from market import lmsr, services
from market.models import MICRO, Account, LedgerEntry, Market, Position, Trade
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 32
TRADES_PER_THREAD = 8


def test_concurrent_trades_equal_a_serial_replay():
    markets = [services.market_create(question=QuestionFactory()) for _ in range(3)]
    users = UserFactory.create_batch(THREADS)
    for user in users:
        services.account_for_user(user=user)
    total_before = Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"]
    errors: list[BaseException] = []
    refused = []

    def worker(user, seed):
        rng = random.Random(seed)
        try:
            for _ in range(TRADES_PER_THREAD):
                market = rng.choice(markets)
                outcome = rng.randrange(2)
                held = (
                    Position.objects.filter(user=user, market=market, outcome=outcome)
                    .values_list("shares", flat=True)
                    .first()
                )
                try:
                    if held and rng.random() < 0.3:
                        services.trade_execute(
                            user=user,
                            market_id=market.pk,
                            outcome=outcome,
                            side="sell",
                            shares=max(1, held // 2),
                            idempotency_key=uuid.uuid4().hex,
                        )
                    else:
                        services.trade_execute(
                            user=user,
                            market_id=market.pk,
                            outcome=outcome,
                            side="buy",
                            amount=rng.randint(1, 40) * MICRO,
                            idempotency_key=uuid.uuid4().hex,
                        )
                except ValidationError as error:  # e.g. a sale racing another of the same shares
                    refused.append(error)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(user, i)) for i, user in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert Trade.objects.count() >= THREADS * TRADES_PER_THREAD * 0.9

    # No negative balance, every balance equals its ledger, money is conserved.
    assert not Account.objects.exclude(kind__in=[Account.Kind.MINT, Account.Kind.DEBT]).filter(balance__lt=0).exists()
    for account in Account.objects.all():
        assert account.balance == (LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0)
    assert Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"] == total_before

    # Serial replay in commit order (the market row lock orders each market's trades by id).
    spent = {user.pk: 0 for user in users}
    for market in Market.objects.all():
        q = [0, 0]
        for trade in market.trades.order_by("id"):
            if trade.shares > 0:
                expected = lmsr.quote_buy_shares(q, market.liquidity, trade.outcome, trade.shares).cost
            else:
                expected = lmsr.quote_sell_shares(q, market.liquidity, trade.outcome, -trade.shares).cost
            assert trade.cost == expected, "a trade was priced on a stale state (lost update)"
            q[trade.outcome] += trade.shares
            spent[trade.user_id] += trade.cost
        assert market.shares == q
        for outcome in (0, 1):
            held = Position.objects.filter(market=market, outcome=outcome).aggregate(s=Sum("shares"))["s"] or 0
            assert held == q[outcome]
    for user in users:
        assert services.account_for_user(user=user).balance == settings.MARKET_STARTING_GRANT - spent[user.pk]
    assert connection.vendor in ("postgresql", "sqlite")
