"""The public accuracy page (/accuracy/): the aggregates' scores and calibration on resolved questions."""

import datetime as dt
import math

import pytest
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import AggregateSnapshot, Question, QuestionOption, Resolution
from forecasting.services.accuracy import METHODS, resolved_questions
from tests.factories import ArticleFactory, QuestionFactory, UserFactory
from tests.forecasting.test_track_record import resolve

pytestmark = pytest.mark.django_db

HEADLINE, BAYES, MEAN = (m.key for m in METHODS)


def bayes_at(question, day, p):
    """A Bayesian aggregate of P(YES) = p on ``day`` of the question's open period."""
    return AggregateSnapshot.objects.create(
        question=question,
        method=BAYES,
        at=question.opens_at + dt.timedelta(days=day),
        probabilities=[round(1 - p, 6), p],
        forecasters=1,
    )


def by_key(methods):
    return {m.method.key: m for m in methods}


def test_each_method_is_scored_with_its_value_before_forecasting_ended(editor):
    a, b = UserFactory.create_batch(2)
    # Two forecasters: the mean is 0.6.
    question = resolve(editor, {a: (0, "0.3"), b: (1, "0.9")}, outcome="yes", resolved_day=5)
    bayes_at(question, 2, 0.8)
    bayes_at(question, 6, 0.99)  # after the resolution: must not count
    (item,) = resolved_questions(methods=[HEADLINE, BAYES, MEAN])
    assert item.outcome_index == 1
    assert item.aggregates[BAYES] == [pytest.approx(0.2), pytest.approx(0.8)]
    assert item.aggregates[MEAN][1] == pytest.approx(0.6)
    accuracy = services.site_accuracy()
    scores = by_key(accuracy.overall)
    assert scores[BAYES].mean_brier == pytest.approx(0.04)
    assert scores[BAYES].mean_log == pytest.approx(math.log(0.8))
    assert scores[MEAN].mean_brier == pytest.approx(0.16)
    assert scores[MEAN].mean_log == pytest.approx(math.log(0.6))
    # The headline is the last community prediction the question page showed before the end.
    shown = AggregateSnapshot.objects.filter(question=question, method=HEADLINE).order_by("-at", "-id").first()
    headline = item.aggregates[HEADLINE][1]
    assert headline == pytest.approx(shown.probability_yes)
    assert scores[HEADLINE].mean_brier == pytest.approx((1 - headline) ** 2)


def test_questions_not_resolved_to_an_outcome_do_not_count(editor):
    a = UserFactory()
    scored = resolve(editor, {a: (0, "0.7")}, outcome="no")
    annulled = resolve(editor, {a: (0, "0.7")}, outcome="annulled")
    Question.objects.filter(pk=annulled.pk).update(status=Question.Status.ANNULLED)
    retracted = resolve(editor, {a: (0, "0.7")}, outcome="yes")  # un-resolved: back to closed
    Resolution.objects.filter(question=retracted).update(retracted_at=timezone.now())
    Question.objects.filter(pk=retracted.pk).update(status=Question.Status.CLOSED)
    QuestionFactory(status=Question.Status.DRAFT)
    items = resolved_questions(methods=[HEADLINE])
    assert [i.question.pk for i in items] == [scored.pk]
    assert services.site_accuracy().questions == 1
    assert by_key(services.site_accuracy().overall)[HEADLINE].mean_brier == pytest.approx(0.49)


def test_a_re_resolution_scores_against_the_active_resolution(editor):
    a = UserFactory()
    question = resolve(editor, {a: (0, "0.7")}, outcome="yes")
    Resolution.objects.filter(question=question).update(retracted_at=timezone.now())
    Resolution.objects.create(question=question, outcome="no", resolved_by=editor, resolved_at=question.closes_at)
    (item,) = resolved_questions(methods=[HEADLINE])
    assert item.outcome_index == 0


def test_multiple_choice_questions_are_scored_over_every_option(editor):
    start = timezone.now() - dt.timedelta(days=20)
    question = QuestionFactory(
        question_type=Question.Type.MULTIPLE_CHOICE, opens_at=start, closes_at=start + dt.timedelta(days=10)
    )
    options = [QuestionOption.objects.create(question=question, position=i, label=x) for i, x in enumerate("ABC")]
    AggregateSnapshot.objects.create(
        question=question, method=HEADLINE, at=start, probabilities=[0.5, 0.3, 0.2], forecasters=1
    )
    Resolution.objects.create(
        question=question, outcome="option", option=options[1], resolved_by=editor, resolved_at=question.closes_at
    )
    Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
    (item,) = resolved_questions(methods=[HEADLINE])
    assert item.outcome_index == 1
    headline = by_key(services.site_accuracy().overall)[HEADLINE]
    assert headline.mean_brier == pytest.approx(0.25 + 0.49 + 0.04)
    assert headline.mean_log == pytest.approx(math.log(0.3))
    assert sum(b.count for b in headline.calibration) == 3  # every option is a forecast


def test_fair_comparison_and_per_article_groups(editor):
    a = UserFactory()
    politics, sport = ArticleFactory(title="Politics"), ArticleFactory(title="Sport")
    with_bayes = resolve(editor, {a: (0, "0.8")}, article=politics, outcome="yes")
    bayes_at(with_bayes, 1, 0.9)
    resolve(editor, {a: (0, "0.4")}, article=sport, outcome="yes")  # no Bayesian aggregate
    accuracy = services.site_accuracy()
    overall = by_key(accuracy.overall)
    assert (overall[HEADLINE].questions, overall[BAYES].questions) == (2, 1)
    assert overall[HEADLINE].mean_brier == pytest.approx((0.04 + 0.36) / 2)
    assert accuracy.common_questions == 1
    common = by_key(accuracy.common)
    assert common[HEADLINE].mean_brier == pytest.approx(0.04) and common[BAYES].mean_brier == pytest.approx(0.01)
    groups = {g.article.title: g for g in accuracy.by_article}
    assert set(groups) == {"Politics", "Sport"}
    assert by_key(groups["Sport"].methods)[HEADLINE].mean_brier == pytest.approx(0.36)
    assert by_key(groups["Sport"].methods)[BAYES].questions == 0
    assert by_key(groups["Sport"].methods)[BAYES].mean_brier is None


def test_calibration_of_the_aggregates(editor):
    a = UserFactory()
    for outcome in ("yes", "yes", "no", "yes"):
        resolve(editor, {a: (0, "0.75")}, outcome=outcome)
    headline = by_key(services.site_accuracy().overall)[HEADLINE]
    assert [b.count for b in headline.calibration] == [0, 0, 0, 0, 0, 0, 0, 4, 0, 0]
    assert headline.calibration[7].observed_frequency == pytest.approx(0.75)
    assert headline.expected_calibration_error == pytest.approx(0.0)
    assert headline.plot is not None


def test_the_page_shows_the_scores_plots_and_articles(client, editor):
    a = UserFactory()
    article = ArticleFactory(title="Ceasefire talks")
    question = resolve(editor, {a: (0, "0.8")}, article=article, outcome="yes")
    bayes_at(question, 1, 0.9)
    page = client.get(reverse("accuracy")).content.decode()
    assert "Community prediction" in page and "Bayesian model" in page and "Simple mean" in page
    assert "0.040" in page and "0.010" in page  # the headline's and the Bayesian model's Brier
    assert "Ceasefire talks" in page
    assert "<svg" in page and "<title>" in page and 'class="visually-hidden"' in page
    assert "style=" not in page and "onclick" not in page
    assert f'href="{reverse("accuracy")}"' in page  # linked in the header


def test_the_page_without_resolved_questions(client):
    response = client.get(reverse("accuracy"))
    assert response.status_code == 200
    assert "No question has resolved yet" in response.content.decode()


def test_the_page_makes_the_same_queries_whatever_the_number_of_questions(
    client, editor, django_assert_max_num_queries
):
    crowd = UserFactory.create_batch(3)
    for i in range(6):
        question = resolve(
            editor, {u: (j, f"0.{i + j + 1}") for j, u in enumerate(crowd)}, outcome="yes" if i % 2 else "no"
        )
        bayes_at(question, 2, 0.5)
    # One query for every question with its aggregates, and the base template's own.
    with django_assert_max_num_queries(2):
        response = client.get(reverse("accuracy"))
    assert response.status_code == 200
    assert services.site_accuracy().questions == 6
