"""Markets and trades: create a question's market, quote a trade, execute it.

Locking: a trade locks the market row first, then the reader's position, then the accounts it
touches in id order (``FOR UPDATE``), so concurrent trades on one market serialise and trades on
different markets only meet on shared accounts, always in the same order (no deadlocks).

On PostgreSQL a trade is priced in Python (``lmsr``, the tested pure core) on the market state
last seen, then applied by one statement, ``market_trade_apply`` (migration 0002), which takes
those locks in that order and writes only if the market is still in that state: the market row
is locked for one statement instead of a dozen round trips (issue 23). Everything else (SQLite,
refusals, retries, first trades) runs the generic path below, a dozen plain statements.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from forecasting.models import Question
from forecasting.services import bayes_aggregate_request

from .. import lmsr
from ..models import MICRO, Account, LedgerEntry, LedgerTransaction, Market, Position, PricePoint, Trade
from .ledger import account_for_user, lock_accounts, mint_account, post_transaction

Side = str  # "buy" | "sell"
KEY_REUSED = "This idempotency key was already used for a different trade."


def _aware(value: str | dt.datetime) -> dt.datetime:
    """A datetime read by raw SQL: SQLite gives naive UTC (or text), PostgreSQL aware values."""
    parsed = parse_datetime(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _outcomes(question: Question) -> int:
    return 2 if question.is_binary else question.options.count()


@transaction.atomic
def market_create(*, question: Question, subsidy: int | None = None) -> Market:
    """Open a market on the question, its maker funded by the subsidy (the maker's worst-case loss)."""
    existing = Market.objects.filter(question=question).first()
    if existing is not None:
        return existing
    subsidy = int(subsidy or settings.MARKET_DEFAULT_SUBSIDY)
    n = _outcomes(question)
    if n < 2:
        raise ValidationError("A market needs at least two outcomes.")
    maker = Account.objects.create(kind=Account.Kind.MAKER)
    market = Market.objects.create(
        question=question,
        maker=maker,
        subsidy=subsidy,
        liquidity=lmsr.liquidity_from_subsidy(subsidy, n),
        shares=[0] * n,
        status=Market.Status.OPEN,
    )
    locked = lock_accounts([maker, mint_account()])
    post_transaction(
        LedgerTransaction.Kind.SUBSIDY,
        [(locked[maker.pk], subsidy), (locked[mint_account().pk], -subsidy)],
        market=market,
        memo=f"subsidy for question {question.pk}",
    )
    PricePoint.objects.create(market=market, prices=lmsr.prices(market.shares, market.liquidity))
    return market


def market_prices(market: Market) -> list[float]:
    return lmsr.prices(market.shares, market.liquidity)


def _validate_trade_input(
    n_outcomes: int, outcome: object, side: str, shares: object, amount: object
) -> tuple[int, int | None, int | None]:
    errors = {}
    try:
        outcome = int(outcome)
    except (TypeError, ValueError):
        outcome = -1
    if not 0 <= outcome < n_outcomes:
        errors["outcome"] = f"Unknown outcome; this market has {n_outcomes}."
    if side not in ("buy", "sell"):
        errors["side"] = "Choose to buy or to sell."
    if (shares is None) == (amount is None):
        errors["shares"] = "Give either a number of shares or an amount to spend."
    for name, value in (("shares", shares), ("amount", amount)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            errors[name] = f"The {name} must be a positive number."
    if side == "sell" and amount is not None:
        errors["amount"] = "Sell a number of shares."
    if errors:
        raise ValidationError(errors)
    return outcome, shares, amount


def market_quote(
    *, market: Market, outcome: object, side: str, shares: int | None = None, amount: int | None = None
) -> lmsr.Quote:
    """A dry run of a trade at the current prices (nothing is written)."""
    outcome, shares, amount = _validate_trade_input(len(market.shares), outcome, side, shares, amount)
    try:
        return _price(market.shares, market.liquidity, outcome, side, shares, amount)
    except lmsr.SlippageError:
        raise
    except ValueError as error:  # e.g. an amount too small to buy one micro-share
        raise ValidationError(str(error)) from None


def _price(q: list[int], b: float, outcome: int, side: str, shares: int | None, amount: int | None) -> lmsr.Quote:
    if side == "sell":
        return lmsr.quote_sell_shares(q, b, outcome, shares)
    if amount is not None:
        return lmsr.quote_buy_amount(q, b, outcome, amount)
    return lmsr.quote_buy_shares(q, b, outcome, shares)


def _same_trade(trade: Trade, outcome: int, side: str, shares: int | None, amount: int | None) -> bool:
    if trade.outcome != outcome or (trade.shares > 0) != (side == "buy"):
        return False
    if shares is not None:
        return abs(trade.shares) == shares
    return trade.cost <= amount


def _sql(template: str) -> str:
    """Table names filled in; ``FOR UPDATE`` only where the database has row locks (not SQLite,
    which serialises writers on its database lock instead: transaction_mode IMMEDIATE)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    lock_market = " FOR UPDATE OF m" if connection.features.has_select_for_update_of else lock
    return template.format(
        market=Market._meta.db_table,
        question=Question._meta.db_table,
        trade=Trade._meta.db_table,
        position=Position._meta.db_table,
        account=Account._meta.db_table,
        txn=LedgerTransaction._meta.db_table,
        entry=LedgerEntry._meta.db_table,
        price=PricePoint._meta.db_table,
        lock=lock,
        lock_market=lock_market,
    )


def trade_execute(
    *,
    user,
    market_id: int,
    outcome: object,
    side: Side,
    idempotency_key: str,
    shares: int | None = None,
    amount: int | None = None,
    limit_price: float | None = None,
    min_shares: int | None = None,
    max_cost: int | None = None,
    at: dt.datetime | None = None,
) -> Trade:
    """Buy (by shares or by amount) or sell shares, in one transaction.

    A retried request with the same ``idempotency_key`` returns the trade it made the first
    time instead of trading again. ``at`` (default now) is when the trade happens: the demo's
    simulated crowd replays past trades, each inside the question's open window.

    This is the hot path of the market. On PostgreSQL a trade is first tried as one statement
    (``_trade_in_one_statement``); whatever that statement declines (every refusal, a retry, a
    reader's first trade) runs the generic path (``_trade_locked``), which decides. Either way the
    invariants stay in the database: CHECK constraints on balances and positions, unique
    idempotency keys, and the row locks.
    """
    if not idempotency_key or len(idempotency_key) > 80:
        raise ValidationError({"idempotency_key": "A trade needs an idempotency key of at most 80 characters."})
    now = at or timezone.now()
    request = (user, market_id, outcome, side, idempotency_key, shares, amount, limit_price, min_shares, max_cost, now)
    if connection.vendor == "postgresql":
        trade = _trade_in_one_statement(*request)
        if trade is not None:
            return trade
    return _trade_locked(*request)


# The state (liquidity, shares) each market had when this process last saw it: a trade is priced
# on it without reading the market first. Only a hint: market_trade_apply compares it with the
# locked row and answers "stale" (with the row's state) when another trade came in between.
_seen: dict[int, tuple[float, list[int]]] = {}
_turns: dict[int, threading.Lock] = {}
_ATTEMPTS = 8  # then the generic path, which prices under the lock: progress however contended
_APPLY = (
    "SELECT o_status, o_trade, o_txn, o_shares, o_liquidity FROM market_trade_apply("
    "%s::bigint, %s::integer, %s::integer, %s::bigint, %s::bigint, %s::float8, %s::jsonb,"
    " %s::float8, %s::float8, %s::jsonb, %s::varchar, %s::varchar, %s::timestamptz)"
)


def _trade_in_one_statement(
    user, market_id, outcome, side, idempotency_key, shares, amount, limit_price, min_shares, max_cost, now
) -> Trade | None:
    """PostgreSQL: price in Python, then apply with one call of ``market_trade_apply`` (migration
    market 0002), which locks in the generic path's order and writes everything if the market is
    still in the state priced on. Outside a transaction that statement is its own transaction, so
    the market row is locked for one statement and its commit, not for a dozen round trips.
    Returns None, having written nothing, for the generic path to decide."""
    import psycopg  # PostgreSQL only (this path); installed with the project

    # Outside a transaction, this process's threads trading on one market take turns, each pricing
    # on the state the last one left in _seen (at once, they would only make each other's statements
    # stale); a thread waiting here holds no row lock, so this lock cannot join a deadlock. Inside
    # one, a savepoint: an error leaves the caller's transaction usable.
    nested = connection.in_atomic_block
    turn = transaction.atomic() if nested else _turns.setdefault(market_id, threading.Lock())
    if nested:
        connection.validate_no_broken_transaction()
    connection.ensure_connection()
    # A server-side binding cursor (Django's is client-side): no quoting of the parameters into
    # the text, and psycopg prepares the call after a few uses on a persistent connection (a
    # transaction-pooling proxy such as PgBouncer would need prepare_threshold=None).
    with turn, connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        state = _seen.get(market_id)
        if state is None:
            cursor.execute(_sql("SELECT liquidity, shares FROM {market} WHERE id = %s"), [market_id])
            row = cursor.fetchone()
            if row is None:
                return None
            state = (row[0], _json_list(row[1]))
        for _ in range(_ATTEMPTS):
            liquidity, market_shares = state
            try:
                i, n_shares, n_amount = _validate_trade_input(len(market_shares), outcome, side, shares, amount)
                quote = _price(market_shares, liquidity, i, side, n_shares, n_amount)
                lmsr.check_slippage(quote, limit_price=limit_price, min_shares=min_shares, max_cost=max_cost)
            except (ValidationError, ValueError):  # refused here: the generic path words it (or finds a retry)
                return None
            if quote.shares <= 0:
                return None
            signed_shares = quote.shares if side == "buy" else -quote.shares
            cursor.execute(
                _APPLY,
                [
                    market_id,
                    user.pk,
                    i,
                    signed_shares,
                    quote.cost,
                    liquidity,
                    json.dumps(market_shares),
                    quote.price_before,
                    quote.price_after,
                    json.dumps(quote.prices_after),
                    idempotency_key,
                    f"{side} {quote.shares} of outcome {i}",
                    now,
                ],
            )
            status, trade_id, txn_id, new_shares, liquidity = cursor.fetchone()
            if new_shares is None:  # no such market
                return None
            state = _seen[market_id] = (liquidity, _json_list(new_shares))
            if status == "ok":
                return _trade_made(trade_id, market_id, user, i, signed_shares, quote, idempotency_key, txn_id, now)
            if status != "stale":
                return None
    return None


def _json_list(value: str | list) -> list[int]:
    """A JSON column read by raw SQL: Django's PostgreSQL backend leaves jsonb as text."""
    return value if isinstance(value, list) else json.loads(value)


@transaction.atomic
def _trade_locked(
    user, market_id, outcome, side, idempotency_key, shares, amount, limit_price, min_shares, max_cost, now
) -> Trade:
    """The generic path (SQLite, and whatever the one statement declines): a dozen short statements
    in one transaction under the row locks below, in plain SQL (the ORM's per-query overhead was
    most of a trade's cost)."""
    ops = connection.ops
    with connection.cursor() as cursor:
        # 1. The market row, locked: every trade on this market waits here, so each sees the last.
        cursor.execute(
            _sql(
                "SELECT m.maker_id, m.liquidity, m.shares, m.status, q.opens_at, q.closes_at, m.question_id"
                " FROM {market} m JOIN {question} q ON q.id = m.question_id WHERE m.id = %s{lock_market}"
            ),
            [market_id],
        )
        row = cursor.fetchone()
        if row is None:
            raise ValidationError("No such market.")
        maker_id, liquidity, shares_json, status, opens_at, closes_at, question_id = row
        market = Market(pk=market_id, maker_id=maker_id, liquidity=liquidity, status=status)
        market.shares = shares_json if isinstance(shares_json, list) else json.loads(shares_json)
        outcome, shares, amount = _validate_trade_input(len(market.shares), outcome, side, shares, amount)

        # 2. A retry of a trade already made returns it.
        cursor.execute(
            _sql("SELECT id FROM {trade} WHERE user_id = %s AND idempotency_key = %s"), [user.pk, idempotency_key]
        )
        previous = cursor.fetchone()
        if previous is not None:
            trade = Trade.objects.get(pk=previous[0])
            if trade.market_id != market_id or not _same_trade(trade, outcome, side, shares, amount):
                raise ValidationError({"idempotency_key": KEY_REUSED})
            return trade
        if status != Market.Status.OPEN or not _aware(opens_at) <= now < _aware(closes_at):
            raise ValidationError("This market is closed: the question is not open.")

        # 3. The reader's position in this outcome, locked.
        cursor.execute(
            _sql("SELECT id, shares FROM {position} WHERE market_id = %s AND user_id = %s AND outcome = %s{lock}"),
            [market_id, user.pk, outcome],
        )
        position = cursor.fetchone()
        quote = market_quote(market=market, outcome=outcome, side=side, shares=shares, amount=amount)
        try:
            lmsr.check_slippage(quote, limit_price=limit_price, min_shares=min_shares, max_cost=max_cost)
        except lmsr.SlippageError as error:
            raise ValidationError(str(error)) from None
        if quote.shares <= 0:
            raise ValidationError({"amount": "That amount buys less than one micro-share."})
        held = position[1] if position else 0
        if side == "sell" and held < quote.shares:
            raise ValidationError(
                {"shares": f"You hold {held / MICRO:,.2f} shares of this outcome; you can't sell more."}
            )

        # 4. The reader's account and the maker's, locked in id order in one statement.
        def lock_accounts() -> list[tuple]:
            cursor.execute(
                _sql(
                    "SELECT id, kind, balance FROM {account}"
                    " WHERE id = %s OR (user_id = %s AND kind = 'user') ORDER BY id{lock}"
                ),
                [maker_id, user.pk],
            )
            return cursor.fetchall()

        accounts = lock_accounts()
        if len(accounts) < 2:  # first trade of this reader: open their account (with its grant)
            account_for_user(user=user)
            accounts = lock_accounts()
        account_id, _, balance = next(a for a in accounts if a[1] == Account.Kind.USER)
        if quote.cost > balance:
            need, have = quote.cost / MICRO, balance / MICRO
            raise ValidationError({"amount": f"Insufficient balance: this costs {need:,.2f} and you have {have:,.2f}."})

        # 5. The ledger: the reader pays the maker (a sale: the maker pays the reader).
        signed_shares = quote.shares if side == "buy" else -quote.shares
        stamp = ops.adapt_datetimefield_value(now)
        cursor.execute(
            _sql("INSERT INTO {txn} (kind, market_id, memo, created_at) VALUES (%s, %s, %s, %s) RETURNING id"),
            [LedgerTransaction.Kind.TRADE, market_id, f"{side} {quote.shares} of outcome {outcome}", stamp],
        )
        txn_id = cursor.fetchone()[0]
        moves = [(account_id, -quote.cost), (maker_id, quote.cost)] if quote.cost else []
        cursor.executemany(
            _sql("UPDATE {account} SET balance = balance + %s WHERE id = %s"), [(a, i) for i, a in moves]
        )
        cursor.executemany(
            _sql("INSERT INTO {entry} (transaction_id, account_id, amount) VALUES (%s, %s, %s)"),
            [(txn_id, i, a) for i, a in moves],
        )

        # 6. The trade, the position, the market's shares and its price history.
        cursor.execute(
            _sql(
                "INSERT INTO {trade} (market_id, user_id, outcome, shares, cost, price_before, price_after,"
                " idempotency_key, ledger_transaction_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                # The same key racing on another market (whose lock this trade does not wait on):
                # the unique index makes us wait for that trade, and then insert nothing.
                " ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id"
            ),
            [
                market_id,
                user.pk,
                outcome,
                signed_shares,
                quote.cost,
                quote.price_before,
                quote.price_after,
                idempotency_key,
                txn_id,
                stamp,
            ],
        )
        inserted = cursor.fetchone()
        if inserted is None:  # raising rolls back the money moved above
            raise ValidationError({"idempotency_key": KEY_REUSED})
        trade_id = inserted[0]
        if position is None:
            cursor.execute(
                _sql(
                    "INSERT INTO {position} (market_id, user_id, outcome, shares, invested) VALUES (%s, %s, %s, %s, %s)"
                ),
                [market_id, user.pk, outcome, signed_shares, quote.cost],
            )
        else:
            cursor.execute(
                _sql("UPDATE {position} SET shares = shares + %s, invested = invested + %s WHERE id = %s"),
                [signed_shares, quote.cost, position[0]],
            )
        market.shares = [q + (signed_shares if i == outcome else 0) for i, q in enumerate(market.shares)]
        cursor.execute(_sql("UPDATE {market} SET shares = %s WHERE id = %s"), [json.dumps(market.shares), market_id])
        cursor.execute(
            _sql("INSERT INTO {price} (market_id, at, prices, trade_id) VALUES (%s, %s, %s, %s)"),
            [market_id, stamp, json.dumps(quote.prices_after), trade_id],
        )
        # The price is an input of the Bayesian aggregate: one debounced update per question.
        bayes_aggregate_request(question_id=question_id)
    return _trade_made(trade_id, market_id, user, outcome, signed_shares, quote, idempotency_key, txn_id, now)


def _trade_made(
    trade_id: int,
    market_id: int,
    user,
    outcome: int,
    signed_shares: int,
    quote: lmsr.Quote,
    idempotency_key: str,
    txn_id: int,
    now: dt.datetime,
) -> Trade:
    """The trade either path wrote, as the caller gets it (without reading it back)."""
    return Trade(
        pk=trade_id,
        market_id=market_id,
        user=user,
        outcome=outcome,
        shares=signed_shares,
        cost=quote.cost,
        price_before=quote.price_before,
        price_after=quote.price_after,
        idempotency_key=idempotency_key,
        ledger_transaction_id=txn_id,
        created_at=now,
    )
