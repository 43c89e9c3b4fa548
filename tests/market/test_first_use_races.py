"""A new reader's first moves racing each other: parallel first accounts, first trades on two
markets at once, one idempotency key on two markets at once.

Meant for PostgreSQL (``DATABASE_URL=postgres://...``), where the unique indexes really make the
racers wait for each other; on SQLite the writers serialise on the database lock and the same
assertions hold trivially.
"""

import threading
import uuid
from collections.abc import Callable
from functools import partial

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections

from market import services
from market.models import MICRO, Account, LedgerEntry, LedgerTransaction, Trade
from tests.factories import QuestionFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_password_hashing")]

ROUNDS = 5


def race(calls: list[Callable[[], object]]) -> tuple[list[object], list[BaseException]]:
    """Run the calls in threads released together; what they returned and what they raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = []
    raised: list[BaseException] = []

    def run(call):
        try:
            barrier.wait(timeout=30)
            results.append(call())
        except BaseException as error:
            raised.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, raised


def buy_five(*, user, market, idempotency_key: str):
    return services.trade_execute(
        user=user, market_id=market.pk, outcome=1, side="buy", amount=5 * MICRO, idempotency_key=idempotency_key
    )


def assert_one_account_with_one_grant(user) -> Account:
    accounts = Account.objects.filter(user=user, kind=Account.Kind.USER)
    assert accounts.count() == 1
    account = accounts.get()
    grants = LedgerEntry.objects.filter(account=account, transaction__kind=LedgerTransaction.Kind.GRANT)
    assert list(grants.values_list("amount", flat=True)) == [settings.MARKET_STARTING_GRANT]
    return account


def test_parallel_first_accounts_make_one_account_with_one_grant():
    for _ in range(ROUNDS):
        user = UserFactory()
        results, raised = race([partial(services.account_for_user, user=user)] * 4)
        assert not raised, raised
        account = assert_one_account_with_one_grant(user)
        assert {a.pk for a in results} == {account.pk}
        assert account.balance == settings.MARKET_STARTING_GRANT


def test_parallel_first_trades_on_two_markets_open_one_account():
    markets = [services.market_create(question=QuestionFactory()) for _ in range(2)]
    for _ in range(ROUNDS):
        user = UserFactory()
        calls = [partial(buy_five, user=user, market=market, idempotency_key=uuid.uuid4().hex) for market in markets]
        trades, raised = race(calls)
        assert not raised, raised
        assert len(trades) == 2
        account = assert_one_account_with_one_grant(user)
        assert account.balance == settings.MARKET_STARTING_GRANT - sum(t.cost for t in trades)


def test_one_idempotency_key_on_two_markets_at_once_trades_once_and_refuses_the_other():
    markets = [services.market_create(question=QuestionFactory()) for _ in range(2)]
    for new_reader in [True, False] * 3:
        user = UserFactory()
        if not new_reader:
            services.account_for_user(user=user)
        key = uuid.uuid4().hex
        calls = [partial(buy_five, user=user, market=market, idempotency_key=key) for market in markets]
        trades, raised = race(calls)
        assert len(trades) == 1
        assert len(raised) == 1 and isinstance(raised[0], ValidationError), raised
        assert "idempotency_key" in raised[0].message_dict
        assert list(Trade.objects.filter(user=user).values_list("pk", flat=True)) == [trades[0].pk]
        account = assert_one_account_with_one_grant(user)
        assert account.balance == settings.MARKET_STARTING_GRANT - trades[0].cost
