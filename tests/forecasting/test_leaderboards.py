import datetime as dt
import math
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import Question, Resolution
from tests.factories import ArticleFactory, PredictionFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


def resolved_question(editor, article, forecasts, outcome="yes"):
    """A question open for 10 days; ``forecasts`` maps user -> (day, probability)."""
    start = timezone.now() - dt.timedelta(days=20)
    question = QuestionFactory(article=article, opens_at=start, closes_at=start + dt.timedelta(days=10))
    for user, (day, p) in forecasts.items():
        PredictionFactory(
            question=question, forecaster=user, probability=Decimal(p), made_at=start + dt.timedelta(days=day)
        )
    Resolution.objects.create(question=question, outcome=outcome, resolved_by=editor)
    Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
    services.question_scores_recompute(question_id=question.pk)
    return question


def test_leaderboard_ranks_by_mean_time_averaged_peer_score_with_minimum_coverage(editor):
    article = ArticleFactory()
    good, bad, lucky = UserFactory.create_batch(3)
    for _ in range(2):
        resolved_question(editor, article, {good: (0, "0.6"), bad: (0, "0.5")})
    # lucky forecasts one question, brilliantly (coverage 1.0 in all)
    resolved_question(editor, article, {good: (0, "0.6"), bad: (0, "0.4"), lucky: (0, "0.99")})

    board = services.leaderboard(article=article, min_coverage=1.5)
    assert [r.username for r in board.ranked] == [good.username, bad.username]
    assert [r.rank for r in board.ranked] == [1, 2]
    assert board.ranked[0].questions == 3
    assert board.ranked[0].coverage == pytest.approx(3.0)
    assert [r.username for r in board.unranked] == [lucky.username]
    assert board.unranked[0].coverage == pytest.approx(1.0, abs=1e-6)
    # With no minimum the lucky forecaster would top the board: the minimum is what stops it.
    assert services.leaderboard(article=article, min_coverage=0).ranked[0].username == lucky.username


def test_article_leaderboard_only_counts_that_article(editor):
    one, other = ArticleFactory.create_batch(2)
    a, b = UserFactory.create_batch(2)
    resolved_question(editor, one, {a: (0, "0.9"), b: (0, "0.1")})
    resolved_question(editor, other, {a: (0, "0.1"), b: (0, "0.9")})
    assert services.leaderboard(article=one, min_coverage=0).ranked[0].username == a.username
    assert services.leaderboard(article=other, min_coverage=0).ranked[0].username == b.username
    overall = services.leaderboard(min_coverage=0).ranked
    assert overall[0].mean_peer == pytest.approx(0.0, abs=1e-6)


def test_track_record_lists_scores_and_calibration(editor):
    article = ArticleFactory()
    me, other = UserFactory.create_batch(2)
    resolved_question(editor, article, {me: (0, "0.8"), other: (0, "0.5")}, outcome="yes")
    resolved_question(editor, article, {me: (0, "0.8"), other: (0, "0.5")}, outcome="no")
    record = services.forecaster_track_record(forecaster=me)
    assert record.forecasts_scored == 2
    assert {round(s["spot"]["brier"], 6) for s in record.scores} == {0.04, 0.64}
    assert all(s["coverage"] == pytest.approx(1.0) for s in record.scores)
    top_bin = record.calibration[8]
    assert top_bin["count"] == 2 and top_bin["observed_frequency"] == pytest.approx(0.5)
    assert record.expected_calibration_error == pytest.approx(0.3)


def board_rows(html: str) -> list[list[str]]:
    """The ranked table's rows, each cell's text."""
    table = html[html.index('<table class="history leaderboard">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr(?: class=\"you\")?>(<td>.*?)</tr>", table, re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]


def test_the_global_leaderboard_page_ranks_by_hand_computed_peer_scores(editor, settings):
    # One question, open 10 days, both forecasting from its first day, resolved YES: a (public) at 90% and
    # b (private) at 30%. Peer score: 100 ln(0.9 / 0.3) = 109.86 and its opposite; Brier 0.01 and 0.49.
    settings.LEADERBOARD_MIN_COVERAGE = 1
    a, b = UserFactory.create_batch(2)
    services.profile_update(user=a, is_public=True, display_name="Ada")
    resolved_question(editor, ArticleFactory(), {a: (0, "0.9"), b: (0, "0.3")})
    assert 100 * math.log(3) == pytest.approx(109.86, abs=0.005)
    page = Client().get(reverse("leaderboard")).content.decode()
    assert board_rows(page) == [
        ["1", "Ada", "109.9", "109.9", "1", "1.00", "0.010"],
        ["2", "Private forecaster", "-109.9", "-109.9", "1", "1.00", "0.490"],
    ]
    # b, logged in, sees their own name on their row
    client = Client()
    client.force_login(b)
    assert board_rows(client.get(reverse("leaderboard")).content.decode())[1][1] == f"{b.username} (you)"
    # with the default minimum (3 questions' coverage) nobody is ranked yet, and the page says so
    settings.LEADERBOARD_MIN_COVERAGE = 3
    page = Client().get(reverse("leaderboard")).content.decode()
    assert board_rows(page) == [] and "Nobody has enough coverage on resolved questions yet." in page
    assert "Not ranked yet (coverage below 3)" in page


def test_multiple_choice_calibration_counts_every_option(editor):
    me = UserFactory()
    question = multiple_choice_question(labels=("A", "B"))
    services.prediction_create(question=question, forecaster=me, option_probabilities=["0.7", "0.3"])
    services.question_resolve(
        question=question, actor=editor, outcome="option", option_id=question.options.get(label="A").pk
    )
    services.question_scores_recompute(question_id=question.pk)
    record = services.forecaster_track_record(forecaster=me)
    assert sum(b["count"] for b in record.calibration) == 2


def test_leaderboard_and_track_record_pages(editor):
    article = ArticleFactory()
    a, b = UserFactory.create_batch(2)
    question = resolved_question(editor, article, {a: (0, "0.9"), b: (0, "0.3")})
    services.profile_update(user=a, is_public=True)  # b keeps the default: a private profile
    client = Client()
    page = client.get(reverse("article_leaderboard", args=[article.slug])).content.decode()
    assert (
        a.username in page and b.username not in page and "Not ranked yet" in page
    )  # one question < the article minimum
    record = client.get(reverse("track_record", args=[a.username])).content.decode()
    assert question.title in record and "Calibration" in record
    assert client.get(reverse("track_record", args=["nobody-here"])).status_code == 404
