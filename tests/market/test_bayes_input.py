"""The market price as an input of the Bayesian aggregate: a trade asks for an update, and the price
earns its own weight from its shown record (``forecasting.sources``, ``bayes.stacking``)."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from forecasting import services as forecasting
from forecasting.models import OutboxTask
from market import services
from market.models import MICRO
from tests.factories import QuestionFactory, UserFactory, resolved_history

pytestmark = pytest.mark.django_db

SHARES_FOR_80 = 200 * MICRO  # at the default subsidy (b = 100 / ln 2), 200 shares of one side price it at 80%


def push_price(question, yes: bool):
    market = services.market_create(question=question)
    services.trade_execute(
        user=UserFactory(),
        market_id=market.pk,
        outcome=1 if yes else 0,
        side="buy",
        shares=SHARES_FOR_80,
        idempotency_key=uuid.uuid4().hex,
    )
    return market


def test_a_trade_asks_for_one_debounced_bayesian_update(question, reader):
    forecasting.prediction_create(question=question, forecaster=reader, probability=Decimal("0.6"))
    question.aggregate_state.bayes_pending = False  # the forecast's own update has run
    question.aggregate_state.save()
    queued = OutboxTask.objects.filter(task_name="forecasting.tasks.update_bayes_aggregate", args=[question.pk])
    before = queued.count()
    market = push_price(question, yes=True)
    assert queued.count() == before + 1
    question.aggregate_state.refresh_from_db()
    assert question.aggregate_state.bayes_pending is True
    # another trade while the update is pending queues nothing more
    services.trade_execute(
        user=UserFactory(), market_id=market.pk, outcome=0, side="buy", amount=MICRO, idempotency_key="k2"
    )
    assert queued.count() == before + 1


def test_the_market_earns_weight_when_its_price_was_right(editor):
    _, unskilled = resolved_history(editor)
    forecasting.bayes_refit_request(reason="test")
    forecasting.bayes_refit_run(task_id="t1")
    start = timezone.now() - dt.timedelta(days=5)
    for i in range(16):
        yes = i % 2 == 0
        question = QuestionFactory(opens_at=start, closes_at=timezone.now() + dt.timedelta(days=3))
        # the crowd here is the coin-flipper alone; the market's traders knew
        forecasting.prediction_create(
            question=question, forecaster=unskilled, probability=Decimal("0.45" if yes else "0.55"), now=start
        )
        push_price(question, yes=yes)
        snapshot = forecasting.bayes_aggregate_update(question_id=question.pk)
        assert snapshot.parameters["market_p"] == pytest.approx(0.8 if yes else 0.2, abs=0.01)
        forecasting.question_resolve(question=question, actor=editor, outcome="yes" if yes else "no")
    records, _ = forecasting.bayes_stack_training()
    assert records.shape == (16, 3)

    forecasting.bayes_refit_request(reason="test")
    run = forecasting.bayes_refit_run(task_id="t2")
    stack = run.fit["stack"]
    assert stack["n_market"] == 16 and stack["weights"][2] > 0.1

    question = QuestionFactory()
    forecasting.prediction_create(question=question, forecaster=unskilled, probability=Decimal("0.5"))
    push_price(question, yes=True)
    shown = forecasting.bayes_aggregate_update(question_id=question.pk)
    assert shown.probability_yes > shown.parameters["pool_p"] + 0.05  # moved towards the market's 80%
    assert shown.low < shown.probability_yes < shown.high
    page = Client().get(question.get_absolute_url()).content.decode()
    assert "market price (80%)" in page

    # a question without a market: the market's weight plays no part
    plain = QuestionFactory()
    forecasting.prediction_create(question=plain, forecaster=unskilled, probability=Decimal("0.5"))
    unmarketed = forecasting.bayes_aggregate_update(question_id=plain.pk)
    assert unmarketed.parameters["market_p"] is None
    assert "market price" not in Client().get(plain.get_absolute_url()).content.decode()
