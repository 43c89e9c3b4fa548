"""A soak of the whole write path: random forecasts, trades, sells, closes, resolves, annuls and
un-resolves from many threads at once, then every invariant checked against the database.

Used by ``tests/integration/test_soak.py`` (a few hundred operations, in CI on PostgreSQL) and by
``bench/soak.py`` (10,000 and more, threads in several processes). Call ``newsroom`` once to
create the questions and people, ``run`` to hammer them, ``violations`` for what is broken (empty
when all is well):

- money: every balance equals the sum of its ledger entries, all balances sum to zero (the mint's
  is the negative of what it issued), no reader's balance is negative;
- markets: each market's state follows its question's status, and its trades replay serially
  (in id order: the market row lock orders them) to the same prices, shares and positions;
- scores: every stored score equals a recompute from the database;
- aggregates: every question's latest stored value of each parameter-free method equals a
  recompute from its forecasts.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Sum
from django.utils import timezone

from forecasting import aggregation, services
from forecasting.models import Article, Question, Score
from market import lmsr
from market import services as market_services
from market.models import MICRO, Account, LedgerEntry, Market, Position

OPERATIONS = {"forecast": 40, "buy": 25, "sell": 10, "editorial": 4}  # weights
# An editor mostly takes an action the question's status allows, and sometimes any action at all
# (which the services must refuse cleanly).
NEXT_ACTIONS = {
    Question.Status.OPEN: ("close", "resolve", "resolve", "annul"),
    Question.Status.CLOSED: ("reopen", "reopen", "resolve", "annul"),
    Question.Status.RESOLVED: ("unresolve",),
    Question.Status.ANNULLED: ("unresolve",),
}
ANY_ACTION = ("close", "reopen", "resolve", "annul", "unresolve")


@dataclass
class Report:
    done: Counter = field(default_factory=Counter)  # operation -> committed
    refused: Counter = field(default_factory=Counter)  # operation -> refused with a clear error
    reasons: Counter = field(default_factory=Counter)  # (operation, first message) -> refusals
    errors: list[str] = field(default_factory=list)  # anything else: each one is a defect

    @property
    def operations(self) -> int:
        return sum(self.done.values()) + sum(self.refused.values()) + len(self.errors)


@dataclass
class Newsroom:
    editor: object
    readers: list
    question_ids: list[int]


def newsroom(*, readers: int, questions: int, editor, user_factory, tag: str | None = None) -> Newsroom:
    """Open yes/no and multiple-choice questions (each with its market) and funded readers."""
    tag = tag or uuid.uuid4().hex[:8]
    now = timezone.now()
    article = Article.objects.create(slug=f"soak-{tag}", title="Soak", published_at=now, body="-")
    ids = []
    for i in range(questions):
        multiple = i % 3 == 2
        question = services.question_create(
            actor=editor,
            article=article,
            title=f"Soak question {i}",
            resolution_criteria="-",
            opens_at=now - timezone.timedelta(days=1),
            closes_at=now + timezone.timedelta(days=30),
            question_type=Question.Type.MULTIPLE_CHOICE if multiple else Question.Type.BINARY,
            options=("A", "B", "C") if multiple else (),
        )
        ids.append(services.question_open(question=question, actor=editor).pk)
    people = [user_factory(f"soak-{tag}-{i}") for i in range(readers)]
    return Newsroom(editor=editor, readers=people, question_ids=ids)


def _forecast(rng: random.Random, room: Newsroom, question: Question) -> None:
    reader = rng.choice(room.readers)
    if question.is_binary:
        services.prediction_create(question=question, forecaster=reader, probability=Decimal(rng.randint(1, 99)) / 100)
    else:
        weights = [rng.randint(1, 20) for _ in range(question.options.count())]
        cents = [w * 100 // sum(weights) for w in weights]
        cents[0] += 100 - sum(cents)
        services.prediction_create(
            question=question, forecaster=reader, option_probabilities=[Decimal(c) / 100 for c in cents]
        )


def _trade(rng: random.Random, room: Newsroom, question: Question, side: str) -> None:
    market = Market.objects.filter(question=question).first()
    if market is None:
        raise ValidationError("no market")
    if side == "buy":
        market_services.trade_execute(
            user=rng.choice(room.readers),
            market_id=market.pk,
            outcome=rng.randrange(len(market.shares)),
            side="buy",
            amount=rng.randint(1, 30) * MICRO,
            idempotency_key=uuid.uuid4().hex,
        )
        return
    # Sell half of somebody's holding (another thread may sell it first: then a clear refusal).
    holdings = list(Position.objects.filter(market=market, shares__gt=0).select_related("user")[:20])
    if not holdings:
        raise ValidationError("nothing to sell")
    position = rng.choice(holdings)
    market_services.trade_execute(
        user=position.user,
        market_id=market.pk,
        outcome=position.outcome,
        side="sell",
        shares=max(1, position.shares // 2),
        idempotency_key=uuid.uuid4().hex,
    )


def _editorial_action(rng: random.Random, question: Question) -> str:
    return rng.choice(ANY_ACTION if rng.random() < 0.1 else NEXT_ACTIONS[question.status])


def _editorial(rng: random.Random, room: Newsroom, question: Question, operation: str) -> None:
    editor = room.editor
    if operation == "close":
        services.question_close(question=question, actor=editor)
    elif operation == "reopen":
        services.question_open(question=question, actor=editor)
    elif operation == "annul":
        services.question_annul(question=question, actor=editor, note="soak")
    elif operation == "unresolve":
        services.question_unresolve(question=question, actor=editor, note="soak")
    elif question.is_binary:
        services.question_resolve(question=question, actor=editor, outcome=rng.choice(["yes", "no"]))
    else:
        option = rng.choice(list(question.options.all()))
        services.question_resolve(question=question, actor=editor, outcome="option", option_id=option.pk)


def _one(rng: random.Random, room: Newsroom, report: Report, lock: threading.Lock) -> None:
    operation = rng.choices(list(OPERATIONS), weights=list(OPERATIONS.values()))[0]
    question = Question.objects.get(pk=rng.choice(room.question_ids))
    if operation == "editorial":
        operation = _editorial_action(rng, question)
    try:
        if operation == "forecast":
            _forecast(rng, room, question)
        elif operation in ("buy", "sell"):
            _trade(rng, room, question, operation)
        else:
            _editorial(rng, room, question, operation)
    except ValidationError as error:  # an action the state does not allow (a closed market, a sale of nothing...)
        with lock:
            report.refused[operation] += 1
            report.reasons[(operation, error.messages[0][:60])] += 1
    except Exception as error:
        with lock:
            report.errors.append(f"{operation} on question {question.pk}: {type(error).__name__}: {error}")
    else:
        with lock:
            report.done[operation] += 1


def run(room: Newsroom, *, operations: int, threads: int, seed: int = 0) -> Report:
    """``operations`` random operations spread over ``threads`` threads, each with its own connection."""
    report, lock = Report(), threading.Lock()
    shares = [operations // threads + (i < operations % threads) for i in range(threads)]

    def worker(index: int, count: int) -> None:
        rng = random.Random(seed * 1_000 + index)
        try:
            for _ in range(count):
                _one(rng, room, report, lock)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate(shares)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return report


# --- invariants -------------------------------------------------------------------------------------

MARKET_STATUS = {
    Question.Status.OPEN: Market.Status.OPEN,
    Question.Status.CLOSED: Market.Status.CLOSED,
    Question.Status.RESOLVED: Market.Status.RESOLVED,
    Question.Status.ANNULLED: Market.Status.ANNULLED,
}


def money_violations() -> list[str]:
    found = []
    entries = dict(LedgerEntry.objects.values("account").annotate(s=Sum("amount")).values_list("account", "s"))
    for account in Account.objects.all():
        if account.balance != entries.get(account.pk, 0):
            found.append(f"account {account.pk}: balance {account.balance} != ledger {entries.get(account.pk, 0)}")
        if account.kind == Account.Kind.USER and account.balance < 0:
            found.append(f"account {account.pk}: negative balance {account.balance}")
    total = Account.objects.aggregate(s=Sum("balance"))["s"] or 0
    if total != 0:
        found.append(f"money not conserved: balances sum to {total}")
    return found


def market_violations(question_ids: list[int]) -> list[str]:
    found = []
    for market in Market.objects.filter(question_id__in=question_ids).select_related("question"):
        wanted = MARKET_STATUS.get(market.question.status)
        if market.status != wanted:
            found.append(f"market {market.pk}: {market.status} for a {market.question.status} question")
        q = [0] * len(market.shares)
        for trade in market.trades.order_by("id"):
            quote = (
                lmsr.quote_buy_shares(q, market.liquidity, trade.outcome, trade.shares)
                if trade.shares > 0
                else lmsr.quote_sell_shares(q, market.liquidity, trade.outcome, -trade.shares)
            )
            if trade.cost != quote.cost:
                found.append(f"trade {trade.pk}: cost {trade.cost}, a serial replay gives {quote.cost}")
            q[trade.outcome] += trade.shares
        if list(market.shares) != q:
            found.append(f"market {market.pk}: shares {market.shares}, its trades add up to {q}")
        for outcome, total in enumerate(q):
            held = Position.objects.filter(market=market, outcome=outcome).aggregate(s=Sum("shares"))["s"] or 0
            if held != total:
                found.append(f"market {market.pk} outcome {outcome}: positions hold {held}, the market {total}")
    return found


def _score_rows(question_id: int) -> list[tuple]:
    return sorted(
        Score.objects.filter(question_id=question_id).values_list(
            "forecaster_id", "kind", "method", "value", "coverage"
        )
    )


def score_violations(question_ids: list[int]) -> list[str]:
    found = []
    for question_id in question_ids:
        stored = _score_rows(question_id)
        services.question_scores_recompute(question_id=question_id)
        if _score_rows(question_id) != stored:
            found.append(f"question {question_id}: stored scores differ from a recompute")
    return found


def aggregate_violations(question_ids: list[int]) -> list[str]:
    found = []
    for question in Question.objects.filter(pk__in=question_ids):
        current = services.aggregates_current(question=question)
        for name, recomputed in services.aggregates_recompute(question=question).items():
            if aggregation.AGGREGATORS[name].parameters:
                continue  # learnt parameters change with refits; the value is stored with those of its time
            stored = current.get(name)
            if stored is None or any(abs(a - b) > 2e-6 for a, b in zip(stored.probabilities, recomputed, strict=True)):
                found.append(f"question {question.pk}: stored {name} differs from a recompute")
    return found


def violations(room: Newsroom) -> list[str]:
    return [
        *money_violations(),
        *market_violations(room.question_ids),
        *score_violations(room.question_ids),
        *aggregate_violations(room.question_ids),
    ]
