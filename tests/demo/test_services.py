"""demo_seed: a small crowd written once through the real services, consistent with every recompute."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from comments.models import Comment
from demo import content
from demo.models import DEMO_READERS_GROUP, DemoRun
from demo.services import demo_seed
from forecasting import services as forecasting
from forecasting.models import (
    AggregateSnapshot,
    Article,
    ForecasterProfile,
    Prediction,
    Question,
    Resolution,
    Score,
)
from market import services as market
from market.models import MICRO, Account, LedgerEntry, LedgerTransaction, Market, Position, PricePoint, Trade
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db
READERS = 15


@pytest.fixture
def seeded(tmp_path):
    call_command("seed_demo", credentials_file=str(tmp_path / "accounts.json"), no_crowd=True)
    return demo_seed(seed=7, readers=READERS)


def counts() -> tuple[int, ...]:
    models = (User, Article, Question, Prediction, Trade, Comment, Resolution, Score, AggregateSnapshot, DemoRun)
    return tuple(model.objects.count() for model in models)


def test_seeds_once_and_a_second_call_adds_nothing(seeded):
    assert seeded is not None and seeded.summary["readers"] == READERS
    assert seeded.summary["forecasts"] == Prediction.objects.count() > 0
    assert Trade.objects.exists() and Comment.objects.exists()
    before = counts()
    assert demo_seed(seed=7, readers=READERS) is None
    assert demo_seed(seed=8, readers=READERS) is None
    assert counts() == before

    # The simulated readers are marked as demo readers and cannot log in.
    readers = User.objects.filter(groups__name=DEMO_READERS_GROUP)
    assert readers.count() == READERS
    assert all(u.username.startswith("demo-") and not u.has_usable_password() for u in readers)
    assert set(Prediction.objects.values_list("forecaster__username", flat=True)) <= {u.username for u in readers}
    # Most of them show their track record (so the public pages have content), some stay private.
    public = ForecasterProfile.objects.filter(user__in=readers, is_public=True).count()
    assert 0 < public < READERS


def test_older_articles_resolved_in_the_past_scores_and_aggregates_equal_a_recompute(seeded):
    front = Article.objects.exclude(section=content.DEMO_SECTION).get()
    demo = Question.objects.filter(article__section=content.DEMO_SECTION)
    assert demo.count() == sum(len(a["questions"]) for a in content.ARTICLES)
    outcomes = set(Resolution.objects.filter(question__in=demo).values_list("outcome", flat=True))
    assert outcomes == {"yes", "no", "option", "annulled"}
    assert not demo.exclude(status__in=["resolved", "annulled"]).exists()
    for question in demo:
        resolution = question.resolutions.get()
        assert question.opens_at < question.closes_at < resolution.resolved_at < front.published_at
        assert not question.predictions.filter(made_at__gte=question.closes_at).exists()
    # The front page's questions stay open and got the crowd's forecasts of the last weeks.
    assert not front.questions.exclude(status="open").exists()
    assert Prediction.objects.filter(question__article=front).exists()

    # Scores equal a recompute; the annulled question has none.
    resolved = Question.objects.filter(status="resolved", article__section=content.DEMO_SECTION)
    stored = sorted(Score.objects.values_list("question", "forecaster", "kind", "method", "value"))
    assert {q for q, *_ in stored} == set(resolved.filter(predictions__isnull=False).values_list("pk", flat=True))
    for question in resolved:
        forecasting.question_scores_recompute(question_id=question.pk)
    assert sorted(Score.objects.values_list("question", "forecaster", "kind", "method", "value")) == stored
    assert forecasting.leaderboard(min_coverage=0).ranked
    # Stored aggregates (with the parameters fitted on the resolved questions) equal a recompute.
    for question in Question.objects.filter(predictions__isnull=False).distinct():
        current = forecasting.aggregates_current(question=question)
        for method, values in forecasting.aggregates_recompute(question=question).items():
            np.testing.assert_allclose(current[method].probabilities, np.round(values, 6), atol=1e-6)


def test_money_is_conserved_and_every_market_settled(seeded):
    mint = Account.objects.get(kind=Account.Kind.MINT)
    assert Account.objects.exclude(kind=Account.Kind.MINT).aggregate(s=Sum("balance"))["s"] == -mint.balance
    for account in Account.objects.all():
        assert account.balance == (LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0)
        if account.kind != Account.Kind.MINT:
            assert account.balance >= 0
    for row in Market.objects.select_related("question"):
        assert row.status == row.question.status
        if row.status == "resolved":  # each winning micro-share paid one micro-unit
            won = Position.objects.filter(market=row, outcome=row.resolved_outcome).aggregate(s=Sum("shares"))["s"]
            paid = LedgerEntry.objects.filter(
                transaction__market=row, transaction__kind=LedgerTransaction.Kind.PAYOUT, amount__gt=0
            ).aggregate(s=Sum("amount"))["s"]
            assert (paid or 0) == (won or 0)
    for trade in Trade.objects.select_related("market__question"):
        assert trade.market.question.opens_at <= trade.created_at < trade.market.question.closes_at


def test_the_same_seed_writes_the_same_forecasts():
    def run() -> list[tuple]:
        demo_seed(seed=3, readers=10, now=now)
        return list(
            Prediction.objects.order_by("made_at", "forecaster__username", "question__title").values_list(
                "forecaster__username", "question__title", "made_at", "probability", "option_probabilities", "rationale"
            )
        )

    now = timezone.now()
    with transaction.atomic():
        first = run()
        transaction.set_rollback(True)
    assert not DemoRun.objects.exists()
    assert run() == first and first


def test_bad_input_is_refused_and_writes_nothing():
    with pytest.raises(ValidationError):
        demo_seed(seed=1, readers=0)
    assert not DemoRun.objects.exists() and not User.objects.exists()


def test_a_taken_demo_username_stops_the_seeding_and_writes_nothing():
    from demo.crowd import simulate

    taken = simulate(seed=5, questions=[], now=timezone.now(), readers=4).readers[2].username
    UserFactory(username=taken)
    with pytest.raises(ValidationError, match=taken):
        demo_seed(seed=5, readers=4)
    assert not DemoRun.objects.exists() and not Article.objects.exists() and User.objects.count() == 1


def test_the_banner_shows_once_demo_data_is_present(client, tmp_path):
    call_command("seed_demo", credentials_file=str(tmp_path / "accounts.json"), no_crowd=True)
    assert "simulated demo readers" not in client.get("/").content.decode()
    demo_seed(seed=1, readers=3)
    assert "simulated demo readers" in client.get("/").content.decode()


# --- trade_execute's ``at``: a trade dated in the past, inside the question's open window ------------


def test_a_trade_can_be_dated_in_the_past_within_the_open_window():
    start = timezone.now() - dt.timedelta(days=5)
    question = QuestionFactory(opens_at=start, closes_at=start + dt.timedelta(days=30))
    row = market.market_create(question=question)
    reader = UserFactory()
    at = start + dt.timedelta(days=1)
    trade = market.trade_execute(
        user=reader, market_id=row.pk, outcome=1, side="buy", amount=5 * MICRO, idempotency_key="a", at=at
    )
    assert Trade.objects.get(pk=trade.pk).created_at == at
    assert PricePoint.objects.get(trade_id=trade.pk).at == at


def test_a_trade_dated_before_the_question_opened_is_refused_and_changes_nothing():
    start = timezone.now() - dt.timedelta(days=5)
    question = QuestionFactory(opens_at=start, closes_at=start + dt.timedelta(days=30))
    row = market.market_create(question=question)
    reader = UserFactory()
    market.account_for_user(user=reader)
    balances = dict(Account.objects.values_list("pk", "balance"))
    with pytest.raises(ValidationError, match="closed"):
        market.trade_execute(
            user=reader,
            market_id=row.pk,
            outcome=1,
            side="buy",
            amount=5 * MICRO,
            idempotency_key=uuid.uuid4().hex,
            at=start - dt.timedelta(hours=1),
        )
    assert dict(Account.objects.values_list("pk", "balance")) == balances and not Trade.objects.exists()


def test_a_forecast_the_product_would_refuse_stops_the_seeding_and_writes_nothing(monkeypatch):
    """The bulk path checks prediction_create's rules: here a forecast dated after its question closed."""
    from demo import services
    from demo.crowd import ForecastEvent

    real = services.simulate

    def late(**kwargs):
        crowd = real(**kwargs)
        event = crowd.forecasts[0]
        bad = ForecastEvent(event.at + dt.timedelta(days=365), event.question, event.reader, event.probability, None)
        return type(crowd)(crowd.readers, (*crowd.forecasts, bad), crowd.trades, crowd.comments)

    monkeypatch.setattr(services, "simulate", late)
    with pytest.raises(ValidationError, match="does not take forecasts"):
        demo_seed(seed=2, readers=5)
    assert not DemoRun.objects.exists() and not Prediction.objects.exists() and not Article.objects.exists()
