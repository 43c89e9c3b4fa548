"""Settlement follows the question (``market_sync_with_question``, run in the editor's transaction
through forecasting's ``question_status_changed`` signal, see ``market/receivers.py``).

Resolved -> each winning micro-share pays one micro-unit; annulled -> each reader gets their net
investment back; un-resolved -> the settlement is reversed entry by entry (a reader who already
spent their payout is left owing the rest on their debt account, so balances never go below zero).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum

from forecasting.models import Question
from forecasting.services import active_resolution

from ..models import Account, LedgerTransaction, Market, Position
from .ledger import account_for_user, lock_accounts, post_transaction
from .trading import market_create


def _settle_payout(market: Market, outcome: int) -> LedgerTransaction | None:
    winners = list(Position.objects.filter(market=market, outcome=outcome, shares__gt=0))
    accounts = {p.user_id: account_for_user(user=p.user) for p in winners}
    locked = lock_accounts([market.maker, *accounts.values()])
    entries = [(locked[accounts[p.user_id].pk], p.shares) for p in winners]  # a micro-share pays a micro-unit
    total = sum(amount for _, amount in entries)
    if total == 0:
        return None
    return post_transaction(
        LedgerTransaction.Kind.PAYOUT,
        [*entries, (locked[market.maker_id], -total)],
        market=market,
        memo=f"outcome {outcome} pays",
    )


def _debt_account(user_id: int) -> Account:
    """The reader's debt account (created on first need); a new row, so locking it can't deadlock."""
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
    users = get_user_model().objects.in_bulk(list(invested))
    accounts = {uid: account_for_user(user=users[uid]) for uid in invested}
    locked = lock_accounts([market.maker, *accounts.values()])
    entries, total = [], 0
    for uid, net in invested.items():
        account = locked[accounts[uid].pk]
        # A reader who took out more than they put in gives the difference back.
        entries.extend([(account, net)] if net > 0 else _take_back(account, -net))
        total += net
    return post_transaction(
        LedgerTransaction.Kind.REFUND, [*entries, (locked[market.maker_id], -total)], market=market, memo="annulled"
    )


def _reverse(market: Market, settlement: LedgerTransaction) -> LedgerTransaction:
    """Negate every entry of a settlement; a reader who already spent a credit owes the rest."""
    entries = list(settlement.entries.all())
    locked = lock_accounts([e.account for e in entries])
    reversal = []
    for entry in entries:
        account = locked[entry.account_id]
        if account.kind == Account.Kind.USER and entry.amount > 0:
            reversal.extend(_take_back(account, entry.amount))
        else:
            reversal.append((account, -entry.amount))
    return post_transaction(
        LedgerTransaction.Kind.REVERSAL, reversal, market=market, memo=f"reverses #{settlement.pk}", reverses=settlement
    )


@transaction.atomic
def market_sync_with_question(*, question: Question) -> Market | None:
    """Bring the question's market in line with the question's status; idempotent.

    open → the market exists and trades; closed → no trading (a settlement, if any, is
    reversed: the question was un-resolved); resolved → settled to the resolution's outcome;
    annulled → every reader refunded. Called by the editor's action, in its transaction. Numeric and
    date questions have no market (a market prices outcomes; theirs is a distribution).
    """
    if question.is_continuous:
        return None
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
