"""Track records (/forecasters/<name>/): per-question scores, calibration, scores over time, the community."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import ForecasterProfile, Question, Resolution
from tests.factories import ArticleFactory, PredictionFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


def resolve(editor, forecasts, *, article=None, outcome="yes", resolved_day=10, days_ago=20, title=None):
    """A yes/no question open for 10 days from ``days_ago`` days ago, resolved on ``resolved_day`` of it.

    ``forecasts`` maps a user to (day, probability) or a list of them; the aggregate history is
    rebuilt from the forecasts and the scores computed, as the resolution task would.
    """
    start = timezone.now() - dt.timedelta(days=days_ago)
    extra = {"title": title} if title else {}
    question = QuestionFactory(
        article=article or ArticleFactory(), opens_at=start, closes_at=start + dt.timedelta(days=10), **extra
    )
    for user, made in forecasts.items():
        for day, p in made if isinstance(made, list) else [made]:
            PredictionFactory(
                question=question, forecaster=user, probability=Decimal(p), made_at=start + dt.timedelta(days=day)
            )
    services.aggregate_history_rebuild(question_id=question.pk)
    Resolution.objects.create(
        question=question, outcome=outcome, resolved_by=editor, resolved_at=start + dt.timedelta(days=resolved_day)
    )
    Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
    services.question_scores_recompute(question_id=question.pk)
    question.refresh_from_db()
    return question


def make_public(*users):
    for user in users:
        services.profile_update(user=user, is_public=True)


def test_each_question_has_the_readers_scores_and_the_communitys_brier(editor):
    me = UserFactory()
    q_yes = resolve(editor, {me: (0, "0.8")}, outcome="yes")
    q_no = resolve(editor, {me: (0, "0.3")}, outcome="no")
    record = services.forecaster_record(forecaster=me)
    by_question = {r.question.pk: r for r in record.questions}
    assert set(by_question) == {q_yes.pk, q_no.pk}
    assert by_question[q_yes.pk].spot["brier"] == pytest.approx(0.04)
    assert by_question[q_no.pk].spot["brier"] == pytest.approx(0.09)
    assert by_question[q_yes.pk].outcome == "Yes" and by_question[q_no.pk].outcome == "No"
    assert by_question[q_yes.pk].coverage == pytest.approx(1.0)
    # Alone on the question, the community prediction is the reader's own forecast.
    assert by_question[q_yes.pk].community_brier == pytest.approx(0.04)
    assert by_question[q_no.pk].community_brier == pytest.approx(0.09)


def test_the_community_forecast_is_the_one_standing_before_forecasting_ended(editor):
    """Causal: a forecast made after the resolution does not improve the community's score."""
    me, late = UserFactory.create_batch(2)
    question = resolve(editor, {me: (0, "0.6"), late: (7, "0.99")}, outcome="yes", resolved_day=5)
    (row,) = services.forecaster_record(forecaster=me).questions
    assert row.question == question
    assert row.community_brier == pytest.approx(0.16)  # 0.6 stood at day 5, not the late 0.99
    # The community beside the reader is computed on the questions they share.
    record = services.forecaster_record(forecaster=me)
    assert (record.compared_questions, record.mean_brier) == (1, pytest.approx(0.16))


def test_comparison_with_the_community_averages_the_same_questions(editor):
    me, crowd = UserFactory.create_batch(2)
    # The community (recency-weighted median of two equal forecasts) says what the crowd says.
    resolve(editor, {me: (0, "0.9"), crowd: (0, "0.5")}, outcome="yes")
    resolve(editor, {me: (0, "0.2"), crowd: (0, "0.5")}, outcome="yes")
    record = services.forecaster_record(forecaster=me)
    assert record.compared_questions == 2
    assert record.mean_brier == pytest.approx((0.01 + 0.64) / 2)
    community = [r.community_brier for r in record.questions]
    assert record.community_mean_brier == pytest.approx(sum(community) / 2)
    assert all(c is not None for c in community)


def test_calibration_counts_the_forecasts_standing_at_resolution(editor):
    me = UserFactory()
    resolve(editor, {me: [(0, "0.1"), (2, "0.75")]}, outcome="yes")  # the 0.75 stands
    resolve(editor, {me: (0, "0.72")}, outcome="no")
    resolve(editor, {me: (0, "0.15")}, outcome="no")
    record = services.forecaster_record(forecaster=me)
    counts = {i: b.count for i, b in enumerate(record.calibration) if b.count}
    assert counts == {1: 1, 7: 2}
    assert record.calibration[7].observed_frequency == pytest.approx(0.5)
    assert record.calibration[7].mean_forecast == pytest.approx(0.735)
    assert record.expected_calibration_error == pytest.approx((2 * 0.235 + 1 * 0.15) / 3)
    assert record.plot is not None and len(record.plot.points) == 2


def test_scores_over_time_are_running_means_oldest_first(editor):
    me = UserFactory()
    resolve(editor, {me: (0, "0.9")}, outcome="yes", days_ago=40)  # Brier 0.01, resolved first
    resolve(editor, {me: (0, "0.5")}, outcome="yes", days_ago=30)  # 0.25
    resolve(editor, {me: (0, "0.1")}, outcome="yes", days_ago=20)  # 0.81
    record = services.forecaster_record(forecaster=me)
    assert [round(r.spot["brier"], 2) for r in record.questions] == [0.81, 0.25, 0.01]  # newest first
    plot = record.over_time
    assert [round(p.running_mean, 4) for p in plot.points] == [0.01, 0.13, round(1.07 / 3, 4)]
    assert [p.x for p in plot.points] == [0.0, 280.0, 560.0]
    assert plot.y_max == 1.0  # the largest value (0.81) rounded up to a quarter
    assert plot.points[0].y == pytest.approx(160 - 0.01 * 160, abs=0.1)
    assert plot.line.startswith("0.0,") and plot.community_line


def test_a_single_question_draws_no_line(editor):
    me = UserFactory()
    resolve(editor, {me: (0, "0.9")})
    assert services.forecaster_record(forecaster=me).over_time is None


def test_a_forecaster_without_resolved_questions_has_an_empty_record():
    record = services.forecaster_record(forecaster=UserFactory())
    assert record.questions == [] and record.plot is None and record.over_time is None
    assert record.expected_calibration_error is None and record.mean_brier is None


def test_the_page_shows_plot_table_questions_and_comparison(client, editor):
    me, other = UserFactory.create_batch(2)
    make_public(me)
    first = resolve(editor, {me: (0, "0.8"), other: (0, "0.4")}, outcome="yes", days_ago=30)
    second = resolve(editor, {me: (0, "0.3"), other: (0, "0.6")}, outcome="no")
    page = client.get(reverse("track_record", args=[me.username])).content.decode()
    assert first.title in page and second.title in page
    assert "Calibration" in page and "<svg" in page and "<title>" in page
    assert 'class="visually-hidden"' in page  # the plot's numbers for screen readers
    assert "Against the community" in page and "Scores over time" in page
    assert "0.040" in page  # the reader's Brier on the first question
    assert "style=" not in page and "onclick" not in page  # the strict CSP to come
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)


def test_the_page_for_an_unknown_name_is_a_404(client):
    assert client.get(reverse("track_record", args=["nobody-here"])).status_code == 404


def test_the_page_makes_the_same_queries_whatever_the_number_of_questions(
    client, editor, django_assert_max_num_queries
):
    me = UserFactory()
    make_public(me)
    crowd = UserFactory.create_batch(3)
    for i in range(8):
        resolve(editor, {me: (0, "0.7"), **{u: (1, f"0.{i + 1}") for u in crowd}}, outcome="yes" if i % 2 else "no")
    # The user, the profile (may see it, is it public), the scores, the community, and the base
    # template's own: six, where one query per question would make more than eight.
    with django_assert_max_num_queries(6):
        response = client.get(reverse("track_record", args=[me.username]))
    assert response.status_code == 200
    assert len(services.forecaster_record(forecaster=me).questions) == 8
    assert ForecasterProfile.objects.filter(user=me, is_public=True).exists()
