"""The ledger: accounts and balanced money movements (integer micro-units).

Every money movement is one ``LedgerTransaction`` whose entries sum to zero; callers lock the
accounts it touches first (``lock_accounts``: in id order, so concurrent writers cannot deadlock).
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from ..models import Account, LedgerEntry, LedgerTransaction, Market


def mint_account() -> Account:
    mint, _ = Account.objects.get_or_create(kind=Account.Kind.MINT)
    return mint


def lock_accounts(accounts: list[Account]) -> dict[int, Account]:
    ids = sorted({a.pk for a in accounts})
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def post_transaction(
    kind: str,
    entries: list[tuple[Account, int]],
    *,
    market: Market | None = None,
    memo: str = "",
    reverses: LedgerTransaction | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction; the caller holds the accounts' row locks."""
    totals: dict[int, int] = defaultdict(int)
    accounts: dict[int, Account] = {}
    for account, amount in entries:
        totals[account.pk] += int(amount)
        accounts[account.pk] = account
    if sum(totals.values()) != 0:
        raise AssertionError(f"unbalanced ledger transaction: {dict(totals)}")
    txn = LedgerTransaction.objects.create(kind=kind, market=market, memo=memo[:200], reverses=reverses)
    moves = [(account_id, amount) for account_id, amount in totals.items() if amount]
    for account_id, amount in moves:
        accounts[account_id].balance += amount
    # Plain statements on the hot path (trading): the ORM's bulk_update costs more CPU than the
    # database work. The CHECK constraint still guards every balance's sign.
    entry_table, account_table = LedgerEntry._meta.db_table, Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {account_table} SET balance = balance + %s WHERE id = %s", [(a, i) for i, a in moves]
        )
        cursor.executemany(
            f"INSERT INTO {entry_table} (transaction_id, account_id, amount) VALUES (%s, %s, %s)",
            [(txn.pk, i, a) for i, a in moves],
        )
    return txn


def account_balance(*, user) -> int:
    """What the reader has to trade with, read-only: their balance, or the starting grant they would
    get on first use (pages show it without opening the account: a GET writes nothing)."""
    balance = Account.objects.filter(user=user, kind=Account.Kind.USER).values_list("balance", flat=True).first()
    return int(settings.MARKET_STARTING_GRANT) if balance is None else balance


def account_for_user(*, user, kind: str = Account.Kind.USER) -> Account:
    """The reader's account; created on first use with the starting grant from the mint."""
    account = Account.objects.filter(user=user, kind=kind).first()
    return account if account is not None else _account_create(user=user, kind=kind)


@transaction.atomic
def _account_create(*, user, kind: str) -> Account:
    # Race-free: a parallel first use waits on the unique index (one_account_per_user_kind) until the
    # winner commits, then fails here and reads the winner's account; only the winner posts the grant.
    try:
        with transaction.atomic():  # a savepoint, so the failed INSERT leaves the caller's transaction usable
            account = Account.objects.create(user=user, kind=kind)
    except IntegrityError:
        return Account.objects.get(user=user, kind=kind)
    if kind == Account.Kind.USER and settings.MARKET_STARTING_GRANT:
        mint = mint_account()
        locked = lock_accounts([account, mint])
        post_transaction(
            LedgerTransaction.Kind.GRANT,
            [
                (locked[account.pk], settings.MARKET_STARTING_GRANT),
                (locked[mint.pk], -settings.MARKET_STARTING_GRANT),
            ],
            memo=f"starting grant for {user}",
        )
        account.refresh_from_db()
    return account
