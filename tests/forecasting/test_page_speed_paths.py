"""The question page's read paths (issue 23): what it reads once, and the indexes its newest-row reads use.

- the reader's latest forecast comes from their history, and the community number from the current
  aggregates: no query runs twice on the page, and both say what ``community_forecast`` says;
- the conditional panel costs one light query on a question outside any pair;
- "the newest snapshot" and "the newest rationales" are index walks, not sorts of the question's rows
  (PostgreSQL only: the plans are PostgreSQL's).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comments import services as comment_services
from forecasting import services
from forecasting.models import AggregateSnapshot, Prediction
from forecasting.services.aggregates import headline_method
from forecasting.views.conditionals import conditional_panel_context
from tests.factories import QuestionFactory, UserFactory, multiple_choice_question, numeric_question

pytestmark = pytest.mark.django_db


def _crowd(question, n: int = 4, **values):
    readers = [UserFactory() for _ in range(n)]
    for i, reader in enumerate(readers):
        if question.is_binary:
            services.prediction_create(question=question, forecaster=reader, probability=Decimal(20 + 10 * i) / 100)
        else:
            services.prediction_create(question=question, forecaster=reader, **values)
    return readers


def _page(client: Client, question):
    client.get(question.get_absolute_url())  # per-process caches (content types) filled
    with CaptureQueriesContext(connection) as captured:
        response = client.get(question.get_absolute_url())
    assert response.status_code == 200
    return response, [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_the_page_reads_the_reader_s_forecasts_and_the_newest_snapshot_once(signed_in):
    question = QuestionFactory()
    readers = _crowd(question)
    services.prediction_create(question=question, forecaster=readers[0], probability=Decimal("0.81"))
    client = Client()
    if signed_in:
        client.force_login(readers[0])
    _, queries = _page(client, question)
    repeated = [sql for sql, n in Counter(queries).items() if n > 1]
    assert repeated == []
    own = f'"forecasting_prediction"."forecaster_id" = {readers[0].pk}'
    assert sum(own in sql for sql in queries) == (1 if signed_in else 0)
    newest = f"\"method\" = '{headline_method(question)}'"
    assert sum(newest in sql and '"at" DESC' in sql for sql in queries) == 1


def test_the_page_shows_the_reader_s_latest_forecast_and_the_stored_community_number():
    question = QuestionFactory()
    readers = _crowd(question)
    services.prediction_create(question=question, forecaster=readers[0], probability=Decimal("0.81"))
    client = Client()
    client.force_login(readers[0])
    response, _ = _page(client, question)
    community = services.community_forecast(question=question)
    assert response.context["community"] == community
    assert response.context["community"].forecasters == 4
    mine = response.context["mine"]
    assert mine == Prediction.objects.filter(question=question, forecaster=readers[0]).latest("made_at", "id")
    assert mine.probability == Decimal("0.81")
    assert response.context["history"][0].pk == mine.pk


def test_a_reader_without_a_forecast_has_none_and_sees_the_community():
    question = QuestionFactory()
    _crowd(question, 3)
    client = Client()
    client.force_login(UserFactory())
    response, _ = _page(client, question)
    assert response.context["mine"] is None
    assert response.context["community"] == services.community_forecast(question=question)


def test_a_question_without_forecasts_shows_an_empty_community():
    question = QuestionFactory()
    response, _ = _page(Client(), question)
    assert response.context["community"] == services.community_forecast(question=question)
    assert response.context["community"].probabilities is None


def test_a_newest_headline_snapshot_without_a_forecast_is_still_the_community_number():
    """A snapshot not tied to a forecast (``prediction`` empty) has no siblings in ``aggregates_current``:
    the page reads the community number the usual way then."""
    question = QuestionFactory()
    _crowd(question, 3)
    AggregateSnapshot.objects.create(
        question=question,
        method=headline_method(question),
        at=timezone.now() + dt.timedelta(seconds=1),
        probabilities=[0.1, 0.9],
        forecasters=7,
    )
    response, _ = _page(Client(), question)
    assert response.context["community"].forecasters == 7
    assert response.context["community"] == services.community_forecast(question=question)


def test_a_multiple_choice_page_shows_the_community_per_option():
    question = multiple_choice_question()
    values = {"option_probabilities": [Decimal("0.2"), Decimal("0.3"), Decimal("0.5")]}
    _crowd(question, 3, **values)
    response, _ = _page(Client(), question)
    community = services.community_forecast(question=question)
    assert response.context["community"] == community
    assert [row["community"] for row in response.context["option_rows"]] == community.probabilities


def test_the_conditional_panel_of_a_question_outside_any_pair_is_one_query():
    question = QuestionFactory()
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with CaptureQueriesContext(connection) as captured:
        assert conditional_panel_context(request, question) is None
    assert len(captured.captured_queries) == 1


def test_the_conditional_panel_reads_a_pair_s_questions_in_one_query(editor):
    condition = QuestionFactory(title="Will a ceasefire be signed?", closes_at=timezone.now() + dt.timedelta(days=40))
    outcome = QuestionFactory(title="Will sanctions be eased?", closes_at=timezone.now() + dt.timedelta(days=90))
    pair = services.conditional_create(actor=editor, condition=condition, outcome=outcome)
    services.prediction_create(question=pair.if_yes, forecaster=UserFactory(), probability="0.7")
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with CaptureQueriesContext(connection) as captured:
        context = conditional_panel_context(request, condition)
    # the pairs, their questions, and each branch's community number
    assert len(captured.captured_queries) == 2 + 2
    (shown,) = context["conditional_pairs"]
    assert shown["conditional"].condition.title == "Will a ceasefire be signed?"
    assert shown["conditional"].outcome.title == "Will sanctions be eased?"
    assert [row["question"].pk for row in shown["rows"]] == [pair.if_yes_id, pair.if_no_id]
    assert shown["rows"][0]["p_yes"] == pytest.approx(0.7)
    assert shown["rows"][1]["p_yes"] is None
    with CaptureQueriesContext(connection) as captured:  # the questions are the ones read: no query more
        shown["conditional"].condition.title, shown["conditional"].if_no.title
    assert captured.captured_queries == []


def test_a_pair_with_a_branch_the_reader_cannot_see_is_left_out(editor):
    condition = QuestionFactory(closes_at=timezone.now() + dt.timedelta(days=40))
    outcome = QuestionFactory(closes_at=timezone.now() + dt.timedelta(days=90))
    pair = services.conditional_create(actor=editor, condition=condition, outcome=outcome)
    type(pair.if_no).objects.filter(pk=pair.if_no_id).update(published_at=None)
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert conditional_panel_context(request, condition) is None
    request.user = editor
    assert len(conditional_panel_context(request, condition)["conditional_pairs"]) == 1


def test_a_comment_on_a_numeric_question_carries_no_yes_no_or_option_forecast():
    """The comments' query looks up only the column its question's forecasts fill (none for a distribution)."""
    question = numeric_question()
    reader = UserFactory()
    services.prediction_create(question=question, forecaster=reader, components=[{"median": 50, "low": 30, "high": 70}])
    comment_services.comment_create(question=question, author=reader, body="about 50")
    (thread,) = comment_services.discussion(question=question, viewer=reader).threads
    assert thread.comment.forecast_probability is None and thread.comment.forecast_options is None
    response = Client().get(question.get_absolute_url())
    assert response.status_code == 200 and "about 50" in response.content.decode()


# --- the plans (PostgreSQL) ------------------------------------------------------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # The test's tables are tiny and their statistics whatever the tests before left: ask whether an
        # index serves the order at all (a sort is then only chosen when no index does).
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgres_only
def test_the_newest_snapshot_is_the_index_s_last_entry():
    question = QuestionFactory()
    _crowd(question, 3)
    newest = AggregateSnapshot.objects.filter(question=question, method=headline_method(question)).order_by(
        "-at", "-id"
    )[:1]
    plan = _plan(newest)
    assert "snapshot_history_at_id_idx" in plan
    assert "Sort" not in plan


@postgres_only
def test_the_newest_rationales_walk_their_partial_index():
    question = QuestionFactory()
    reader = UserFactory()
    services.prediction_create(question=question, forecaster=reader, probability="0.6", rationale="Because.")
    rationales = (
        Prediction.objects.filter(question=question)
        .exclude(rationale="")
        .filter(hidden_rationale__isnull=True)
        .order_by("-made_at", "-id")[:100]
    )
    plan = _plan(rationales)
    assert "prediction_rationale_idx" in plan
    assert "Sort" not in plan
