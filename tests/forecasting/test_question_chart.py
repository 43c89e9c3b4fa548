"""The question page's chart data (``/questions/<id>/history.json``) and its distribution panel."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import AggregateSnapshot, Question
from forecasting.services import history
from market import services as market_services
from market.models import MICRO, Market
from tests.factories import QuestionFactory, UserFactory, multiple_choice_question

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def forecast(question, user, p, *, days_ago: float = 0):
    return services.prediction_create(
        question=question,
        forecaster=user,
        probability=Decimal(p),
        now=timezone.now() - dt.timedelta(days=days_ago),
    )


def history_json(client, question, **params):
    return client.get(reverse("question_history", args=[question.pk]), params)


@pytest.fixture
def open_question(question):
    question.opens_at = timezone.now() - dt.timedelta(days=60)
    question.save(update_fields=["opens_at"])
    return question


def test_the_chart_has_the_community_line_as_steps_over_time(client, open_question):
    users = UserFactory.create_batch(3)
    forecast(open_question, users[0], "0.20", days_ago=20)
    forecast(open_question, users[1], "0.80", days_ago=10)
    forecast(open_question, users[2], "0.90", days_ago=1)

    data = history_json(client, open_question).json()

    (community,) = [s for s in data["series"] if s["key"] == "community"]
    assert len(community["t"]) == len(community["v"]) == 3
    assert community["t"] == sorted(community["t"])
    assert community["v"][0] == pytest.approx(0.2)
    current = services.aggregates_current(question=open_question)[services.HEADLINE_METHOD]
    assert community["v"][-1] == pytest.approx(float(current.probability_yes), abs=1e-4)
    assert data["question"]["closes_at"] == pytest.approx(open_question.closes_at.timestamp())
    assert data["question"]["resolved_at"] is None
    assert data["mine"] is None  # anonymous


def test_a_range_starts_with_the_value_that_stood_then(client, open_question):
    users = UserFactory.create_batch(2)
    forecast(open_question, users[0], "0.30", days_ago=40)
    forecast(open_question, users[1], "0.70", days_ago=2)

    week = history_json(client, open_question, range="1w").json()
    (community,) = [s for s in week["series"] if s["key"] == "community"]
    assert community["v"][0] == pytest.approx(0.3)  # what stood a week ago
    assert community["t"][0] == pytest.approx(week["since"], abs=1)
    assert len(community["t"]) == 2
    everything = history_json(client, open_question, range="all").json()
    assert everything["since"] is None


def test_a_bad_range_is_a_clear_400(client, open_question):
    response = history_json(client, open_question, range="forever")
    assert response.status_code == 400
    assert "range" in response.json()["error"]["message"]


def test_the_reader_sees_their_own_forecasts_as_points(client, open_question, reader):
    forecast(open_question, reader, "0.40", days_ago=5)
    forecast(open_question, reader, "0.55", days_ago=1)
    forecast(open_question, UserFactory(), "0.90", days_ago=1)
    client.force_login(reader)

    mine = history_json(client, open_question).json()["mine"]

    assert mine["v"] == [0.4, 0.55]


def test_the_bayesian_line_carries_its_90_percent_band(client, open_question):
    forecast(open_question, UserFactory(), "0.60", days_ago=3)
    now = timezone.now()
    for days, (p, low, high) in ((2, (0.6, 0.4, 0.75)), (1, (0.65, 0.5, 0.8))):
        AggregateSnapshot.objects.create(
            question=open_question,
            method=services.BAYES_METHOD,
            at=now - dt.timedelta(days=days),
            probabilities=[1 - p, p],
            forecasters=1,
            low=low,
            high=high,
        )

    (bayes,) = [s for s in history_json(client, open_question).json()["series"] if s["key"] == "bayes"]

    assert bayes["v"] == [0.6, 0.65]
    assert bayes["low"] == [0.4, 0.5]
    assert bayes["high"] == [0.75, 0.8]


def test_the_market_price_is_a_line_of_the_chart(client, open_question, reader):
    market = Market.objects.filter(question=open_question).first() or market_services.market_create(
        question=open_question
    )
    market_services.trade_execute(
        user=reader, market_id=market.pk, outcome=1, side="buy", idempotency_key="k1", shares=40 * MICRO
    )

    (line,) = [s for s in history_json(client, open_question).json()["series"] if s["key"] == "market"]

    assert line["v"][-1] > 0.5  # buying YES raised its price
    assert line["v"][-1] == pytest.approx(market_services.market_prices(Market.objects.get(pk=market.pk))[-1], abs=1e-4)


def test_multiple_choice_has_one_line_per_option(client):
    question = multiple_choice_question(labels=("Red", "Green", "Blue"))
    services.prediction_create(
        question=question,
        forecaster=UserFactory(),
        option_probabilities=[Decimal("0.5"), Decimal("0.3"), Decimal("0.2")],
    )
    series = history_json(client, question).json()["series"]
    assert [s["label"] for s in series if s["key"].startswith("community:")] == ["Red", "Green", "Blue"]
    assert [s["v"][-1] for s in series if s["key"].startswith("community:")] == pytest.approx([0.5, 0.3, 0.2], abs=1e-3)


def test_drafts_have_no_chart_for_readers(client, reader):
    draft = Question.objects.create(
        article=multiple_choice_question().article,
        title="Embargoed",
        resolution_criteria="x",
        opens_at=timezone.now(),
        closes_at=timezone.now() + dt.timedelta(days=3),
    )
    assert draft.status == Question.Status.DRAFT
    client.force_login(reader)
    assert history_json(client, draft).status_code == 404


def test_long_histories_are_downsampled_and_the_query_count_does_not_grow(
    client, open_question, django_assert_max_num_queries
):
    users = UserFactory.create_batch(30)
    for i in range(600):
        forecast(open_question, users[i % 30], f"0.{10 + (i * 7) % 80:02d}", days_ago=30 - i * 0.05)

    with django_assert_max_num_queries(12):
        data = history_json(client, open_question).json()

    (community,) = [s for s in data["series"] if s["key"] == "community"]
    assert 4 <= len(community["t"]) <= history.MAX_POINTS
    stored = [
        p[-1]
        for p in AggregateSnapshot.objects.filter(question=open_question, method=services.HEADLINE_METHOD).values_list(
            "probabilities", flat=True
        )
    ]
    assert max(community["v"]) == pytest.approx(max(stored), abs=1e-4)  # the extremes survive
    assert min(community["v"]) == pytest.approx(min(stored), abs=1e-4)


def test_the_distribution_counts_every_forecasters_latest_forecast(client, open_question, reader):
    forecast(open_question, reader, "0.10", days_ago=3)
    forecast(open_question, reader, "0.62", days_ago=1)  # only the latest counts
    for p in ("0.61", "0.64", "0.95"):
        forecast(open_question, UserFactory(), p, days_ago=1)
    client.force_login(reader)

    response = client.get(open_question.get_absolute_url())

    distribution = response.context["distribution"]
    assert distribution.forecasters == 4
    assert sum(distribution.bins) == 4
    assert distribution.bins[12] == 3 and distribution.bins[19] == 1
    mine = [bar for bar in response.context["distribution_bars"] if bar["mine"]]
    assert [(bar["low"], bar["high"]) for bar in mine] == [(60, 65)]
    assert b"Where the 4 forecasters stand" in response.content


def test_the_question_page_has_a_table_alternative_to_the_chart(client, open_question):
    for i, p in enumerate(("0.3", "0.5", "0.7")):
        forecast(open_question, UserFactory(), p, days_ago=10 - i)
    response = client.get(open_question.get_absolute_url())
    table = response.context["history_table"]
    assert len(table.rows) == 3
    assert table.rows[0][1] == [pytest.approx(0.3)]
    assert b"The chart&#x27;s data as a table" in response.content or b"The chart's data as a table" in response.content


def test_the_question_pages_query_count_does_not_grow_with_its_forecasts(client):
    """The page reads the chart's downsampled history and the distribution from one state row: the
    number of queries is the same at 3 forecasts as at 120."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for n in (3, 120):
        question = QuestionFactory(opens_at=timezone.now() - dt.timedelta(days=30))
        users = UserFactory.create_batch(n)
        for i, user in enumerate(users):
            forecast(question, user, f"0.{10 + i % 80:02d}", days_ago=29 - i * 0.2)
        client.force_login(users[0])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(question.get_absolute_url()).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
