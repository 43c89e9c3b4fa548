"""Market business logic: accounts, the ledger, trading and settlement.

Locking: a trade locks the market row first, then the accounts it touches in id order
(``select_for_update``), so concurrent trades on one market serialise and trades on different
markets only meet on shared accounts, always in the same order (no deadlocks). Every money
movement is one ``LedgerTransaction`` whose entries sum to zero.

Settlement follows the question (``market_sync_with_question``, called by the forecasting
services in the editor's transaction): resolved → each winning micro-share pays one
micro-unit; annulled → each reader gets their net investment back; un-resolved → the
settlement is reversed entry by entry (a reader who already spent their payout is left owing
the rest on their debt account, so balances never go below zero).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from forecasting.models import Question

from . import lmsr
from .models import MICRO, Account, LedgerEntry, LedgerTransaction, Market, Position, PricePoint, Trade

Side = str  # "buy" | "sell"


def _aware(value: str | dt.datetime) -> dt.datetime:
    """A datetime read by raw SQL: SQLite gives naive UTC (or text), PostgreSQL aware values."""
    parsed = parse_datetime(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --- ledger -------------------------------------------------------------------------------------


def _mint() -> Account:
    mint, _ = Account.objects.get_or_create(kind=Account.Kind.MINT)
    return mint


def _lock(accounts: list[Account]) -> dict[int, Account]:
    ids = sorted({a.pk for a in accounts})
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def _post(
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


def account_for_user(*, user, kind: str = Account.Kind.USER) -> Account:
    """The reader's account; created on first use with the starting grant from the mint."""
    account = Account.objects.filter(user=user, kind=kind).first()
    return account if account is not None else _account_create(user=user, kind=kind)


@transaction.atomic
def _account_create(*, user, kind: str) -> Account:
    account = Account.objects.create(user=user, kind=kind)
    if kind == Account.Kind.USER and settings.MARKET_STARTING_GRANT:
        locked = _lock([account, _mint()])
        _post(
            LedgerTransaction.Kind.GRANT,
            [
                (locked[account.pk], settings.MARKET_STARTING_GRANT),
                (locked[_mint().pk], -settings.MARKET_STARTING_GRANT),
            ],
            memo=f"starting grant for {user}",
        )
        account.refresh_from_db()
    return account


# --- markets ------------------------------------------------------------------------------------


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
    locked = _lock([maker, _mint()])
    _post(
        LedgerTransaction.Kind.SUBSIDY,
        [(locked[maker.pk], subsidy), (locked[_mint().pk], -subsidy)],
        market=market,
        memo=f"subsidy for question {question.pk}",
    )
    PricePoint.objects.create(market=market, prices=lmsr.prices(market.shares, market.liquidity))
    return market


def market_prices(market: Market) -> list[float]:
    return lmsr.prices(market.shares, market.liquidity)


def _validate_trade_input(
    market: Market, outcome: object, side: str, shares: object, amount: object
) -> tuple[int, int | None, int | None]:
    errors = {}
    try:
        outcome = int(outcome)
    except (TypeError, ValueError):
        outcome = -1
    if not 0 <= outcome < len(market.shares):
        errors["outcome"] = f"Unknown outcome; this market has {len(market.shares)}."
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
    outcome, shares, amount = _validate_trade_input(market, outcome, side, shares, amount)
    try:
        if side == "sell":
            return lmsr.quote_sell_shares(market.shares, market.liquidity, outcome, shares)
        if amount is not None:
            return lmsr.quote_buy_amount(market.shares, market.liquidity, outcome, amount)
        return lmsr.quote_buy_shares(market.shares, market.liquidity, outcome, shares)
    except lmsr.SlippageError:
        raise
    except ValueError as error:  # e.g. an amount too small to buy one micro-share
        raise ValidationError(str(error)) from None


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


@transaction.atomic
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
) -> Trade:
    """Buy (by shares or by amount) or sell shares, in one transaction.

    A retried request with the same ``idempotency_key`` returns the trade it made the first
    time instead of trading again. This is the hot path of the market, so it speaks SQL
    directly (a dozen short statements; the ORM's per-query overhead was most of a trade's
    cost); the invariants stay in the database: CHECK constraints on balances and positions,
    unique idempotency keys, and the row locks below.
    """
    if not idempotency_key or len(idempotency_key) > 80:
        raise ValidationError({"idempotency_key": "A trade needs an idempotency key of at most 80 characters."})
    ops = connection.ops
    with connection.cursor() as cursor:
        # 1. The market row, locked: every trade on this market waits here, so each sees the last.
        cursor.execute(
            _sql(
                "SELECT m.maker_id, m.liquidity, m.shares, m.status, q.opens_at, q.closes_at"
                " FROM {market} m JOIN {question} q ON q.id = m.question_id WHERE m.id = %s{lock_market}"
            ),
            [market_id],
        )
        row = cursor.fetchone()
        if row is None:
            raise ValidationError("No such market.")
        maker_id, liquidity, shares_json, status, opens_at, closes_at = row
        market = Market(pk=market_id, maker_id=maker_id, liquidity=liquidity, status=status)
        market.shares = shares_json if isinstance(shares_json, list) else json.loads(shares_json)
        outcome, shares, amount = _validate_trade_input(market, outcome, side, shares, amount)

        # 2. A retry of a trade already made returns it.
        cursor.execute(
            _sql("SELECT id FROM {trade} WHERE user_id = %s AND idempotency_key = %s"), [user.pk, idempotency_key]
        )
        previous = cursor.fetchone()
        if previous is not None:
            trade = Trade.objects.get(pk=previous[0])
            if trade.market_id != market_id or not _same_trade(trade, outcome, side, shares, amount):
                raise ValidationError("This idempotency key was already used for a different trade.")
            return trade
        now = timezone.now()
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
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
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
        trade_id = cursor.fetchone()[0]
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


# --- settlement ---------------------------------------------------------------------------------


def _settle_payout(market: Market, outcome: int) -> LedgerTransaction | None:
    winners = list(Position.objects.filter(market=market, outcome=outcome, shares__gt=0))
    accounts = {p.user_id: account_for_user(user=p.user) for p in winners}
    locked = _lock([market.maker, *accounts.values()])
    entries = [(locked[accounts[p.user_id].pk], p.shares) for p in winners]  # a micro-share pays a micro-unit
    total = sum(amount for _, amount in entries)
    if total == 0:
        return None
    return _post(
        LedgerTransaction.Kind.PAYOUT,
        [*entries, (locked[market.maker_id], -total)],
        market=market,
        memo=f"outcome {outcome} pays",
    )


def _debt_account(user_id: int) -> Account:
    """The reader's debt account (created on first need); a new row, so locking it can't deadlock."""
    from django.contrib.auth import get_user_model

    account = account_for_user(user=get_user_model().objects.get(pk=user_id), kind=Account.Kind.DEBT)
    return Account.objects.select_for_update().get(pk=account.pk)


def _take_back(account: Account, amount: int) -> list[tuple[Account, int]]:
    """Entries taking ``amount`` from a reader: what the balance covers, the rest owed as debt."""
    taken = min(amount, account.balance)
    entries = [(account, -taken)] if taken else []
    if amount - taken:
        entries.append((_debt_account(account.user_id), -(amount - taken)))
    return entries


def _settle_refund(market: Market) -> LedgerTransaction | None:
    invested = dict(
        Position.objects.filter(market=market).values("user").annotate(net=Sum("invested")).values_list("user", "net")
    )
    invested = {user_id: net for user_id, net in invested.items() if net}
    if not invested:
        return None
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(list(invested))
    accounts = {uid: account_for_user(user=users[uid]) for uid in invested}
    locked = _lock([market.maker, *accounts.values()])
    entries, total = [], 0
    for uid, net in invested.items():
        account = locked[accounts[uid].pk]
        # A reader who took out more than they put in gives the difference back.
        entries.extend([(account, net)] if net > 0 else _take_back(account, -net))
        total += net
    return _post(
        LedgerTransaction.Kind.REFUND, [*entries, (locked[market.maker_id], -total)], market=market, memo="annulled"
    )


def _reverse(market: Market, settlement: LedgerTransaction) -> LedgerTransaction:
    """Negate every entry of a settlement; a reader who already spent a credit owes the rest."""
    entries = list(settlement.entries.all())
    locked = _lock([e.account for e in entries])
    reversal = []
    for entry in entries:
        account = locked[entry.account_id]
        if account.kind == Account.Kind.USER and entry.amount > 0:
            reversal.extend(_take_back(account, entry.amount))
        else:
            reversal.append((account, -entry.amount))
    return _post(
        LedgerTransaction.Kind.REVERSAL, reversal, market=market, memo=f"reverses #{settlement.pk}", reverses=settlement
    )


@transaction.atomic
def market_sync_with_question(*, question: Question) -> Market | None:
    """Bring the question's market in line with the question's status; idempotent.

    open → the market exists and trades; closed → no trading (a settlement, if any, is
    reversed: the question was un-resolved); resolved → settled to the resolution's outcome;
    annulled → every reader refunded. Called by the editor's action, in its transaction.
    """
    from forecasting.services import active_resolution

    market = Market.objects.select_for_update().filter(question=question).first()
    if market is None:
        if question.status != Question.Status.OPEN:
            return None
        market = market_create(question=question)
        market = Market.objects.select_for_update().get(pk=market.pk)

    resolution = active_resolution(question)
    wanted_status = {
        Question.Status.OPEN: Market.Status.OPEN,
        Question.Status.CLOSED: Market.Status.CLOSED,
        Question.Status.RESOLVED: Market.Status.RESOLVED,
        Question.Status.ANNULLED: Market.Status.ANNULLED,
        Question.Status.DRAFT: Market.Status.CLOSED,
    }[question.status]
    wanted_outcome = resolution.outcome_index() if wanted_status == Market.Status.RESOLVED and resolution else None
    settled_as = (market.status, market.resolved_outcome)
    if settled_as == (wanted_status, wanted_outcome) and (
        wanted_status not in (Market.Status.RESOLVED, Market.Status.ANNULLED) or market.settlement_id
    ):
        return market
    if market.settlement_id:
        _reverse(market, market.settlement)
        market.settlement = None
    if wanted_status == Market.Status.RESOLVED:
        market.settlement = _settle_payout(market, wanted_outcome)
    elif wanted_status == Market.Status.ANNULLED:
        market.settlement = _settle_refund(market)
    market.status, market.resolved_outcome = wanted_status, wanted_outcome
    market.save(update_fields=["status", "resolved_outcome", "settlement"])
    return market


# --- readers ------------------------------------------------------------------------------------


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


def profit_leaderboard(*, limit: int = 50) -> list[dict]:
    """Readers by profit: balance plus open positions at current prices, minus what they were granted."""
    rows = []
    accounts = Account.objects.filter(kind=Account.Kind.USER).select_related("user")
    debts = dict(Account.objects.filter(kind=Account.Kind.DEBT).values_list("user_id", "balance"))
    for account in accounts:
        held = sum(
            v.value
            for v in portfolio(user=account.user)
            if v.market.status in (Market.Status.OPEN, Market.Status.CLOSED)
        )
        worth = account.balance + debts.get(account.user_id, 0) + held
        rows.append(
            {"username": account.user.username, "profit": worth - settings.MARKET_STARTING_GRANT, "worth": worth}
        )
    rows.sort(key=lambda r: (-r["profit"], r["username"]))
    return rows[:limit]
