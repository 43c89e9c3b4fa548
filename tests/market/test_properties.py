"""Hypothesis: money is conserved across any sequence of trades and editorial actions."""

import uuid

from django.core.exceptions import ValidationError
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from forecasting import services as forecasting
from forecasting.models import Question
from market import services
from market.models import MICRO, Account, LedgerEntry, Market
from tests.factories import QuestionFactory, UserFactory, editor_user

trade_actions = st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 2), st.integers(0, 1), st.integers(1, 300)),
    st.tuples(st.just("sell"), st.integers(0, 2), st.integers(0, 1), st.floats(0.1, 1.0)),
)
actions = st.lists(
    st.one_of(
        trade_actions,
        st.tuples(st.just("resolve"), st.sampled_from(["yes", "no"])),
        st.tuples(st.just("annul")),
        st.tuples(st.just("unresolve")),
        st.tuples(st.just("reopen")),
    ),
    min_size=1,
    max_size=14,
)


def circulating() -> int:
    return Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"] or 0


def balances() -> dict[int, int]:
    return dict(Account.objects.values_list("pk", "balance"))


class MoneyProperties(TestCase):
    def setUp(self):
        self.editor = editor_user()
        self.question = QuestionFactory()
        self.market = services.market_create(question=self.question)
        self.readers = UserFactory.create_batch(3)
        for reader in self.readers:
            services.account_for_user(user=reader)

    def act(self, action):
        kind = action[0]
        q = Question.objects.get(pk=self.question.pk)
        try:
            if kind == "buy":
                _, who, outcome, amount = action
                services.trade_execute(
                    user=self.readers[who],
                    market_id=self.market.pk,
                    outcome=outcome,
                    side="buy",
                    amount=amount * MICRO,
                    idempotency_key=uuid.uuid4().hex,
                )
            elif kind == "sell":
                _, who, outcome, fraction = action
                position = self.readers[who].positions.filter(market=self.market, outcome=outcome).first()
                if position and position.shares:
                    services.trade_execute(
                        user=self.readers[who],
                        market_id=self.market.pk,
                        outcome=outcome,
                        side="sell",
                        shares=max(1, int(position.shares * fraction)),
                        idempotency_key=uuid.uuid4().hex,
                    )
            elif kind == "resolve":
                forecasting.question_resolve(question=q, actor=self.editor, outcome=action[1])
            elif kind == "annul":
                forecasting.question_annul(question=q, actor=self.editor)
            elif kind == "unresolve":
                forecasting.question_unresolve(question=q, actor=self.editor)
            elif kind == "reopen":
                forecasting.question_open(question=q, actor=self.editor)
        except ValidationError:
            pass  # refused actions (e.g. trading a closed market) must change nothing either

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(actions)
    def test_money_is_conserved_and_the_ledger_balances(self, sequence):
        total = circulating()
        for action in sequence:
            self.act(action)
            assert circulating() == total
        for account in Account.objects.all():
            ledger = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
            assert account.balance == ledger
            if account.kind in (Account.Kind.USER, Account.Kind.MAKER):
                assert account.balance >= 0
        maker = Market.objects.get(pk=self.market.pk).maker
        assert maker.balance >= 0  # the maker never loses more than the subsidy

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(trade_actions, min_size=1, max_size=12), st.sampled_from(["yes", "no"]))
    def test_resolve_then_unresolve_restores_every_balance(self, trades, outcome):
        for action in trades:
            self.act(action)
        before = balances()
        q = Question.objects.get(pk=self.question.pk)
        forecasting.question_resolve(question=q, actor=self.editor, outcome=outcome)
        forecasting.question_unresolve(question=q, actor=self.editor)
        assert balances() == before
