import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forecasting import services
from forecasting.models import ModelRun, Prediction, Question, QuestionEvent, Score
from tests.factories import ArticleFactory, PredictionFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader_client(reader):
    client = Client()
    client.force_login(reader)
    return client


@pytest.fixture
def editor_client(editor):
    client = Client()
    client.force_login(editor)
    return client


def test_signup_logs_the_reader_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "newreader",
            "email": "n@example.org",
            "password1": "a-long pass phrase",
            "password2": "a-long pass phrase",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert response.context["user"].username == "newreader"


def test_login_page_and_login(client, reader):
    response = client.post(reverse("login"), {"username": "alice", "password": "correct horse battery"}, follow=True)
    assert response.context["user"].is_authenticated


def test_article_page_lists_questions_with_community_median(client, question):
    a, b, c = UserFactory.create_batch(3)
    for user, p in ((a, "0.2"), (b, "0.6"), (c, "0.9")):
        services.prediction_create(question=question, forecaster=user, probability=Decimal(p))
    QuestionFactory(article=question.article, status=Question.Status.DRAFT, title="Secret draft?")
    response = client.get(question.article.get_absolute_url())
    body = response.content.decode()
    assert question.title in body
    assert "60%" in body and "3 forecasters" in body
    assert "Secret draft?" not in body  # readers do not see drafts


def test_reader_forecasts_and_updates(reader_client, reader, question):
    url = reverse("forecast_submit", args=[question.pk])
    response = reader_client.post(url, {"probability": "37.5"}, follow=True)
    assert f"Your forecast on “{question.title}” is saved." in response.content.decode()
    reader_client.post(url, {"probability": "41"})
    history = list(Prediction.objects.filter(forecaster=reader).order_by("id").values_list("probability", flat=True))
    assert history == [Decimal("0.375"), Decimal("0.41")]
    page = reader_client.get(question.get_absolute_url()).content.decode()
    assert "Your history" in page and "37.5%" in page and "41%" in page


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "must be a number"),
        ("150", "between 1% and 99%"),
        ("0.5", "between 1% and 99%"),
        ("", "required"),
        ("nan", "finite"),
    ],
)
def test_bad_forecast_gets_a_clear_message_and_changes_nothing(reader_client, question, value, message):
    response = reader_client.post(reverse("forecast_submit", args=[question.pk]), {"probability": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Prediction.objects.exists()


def test_forecast_on_closed_question_is_refused(reader_client, question):
    question.status = Question.Status.CLOSED
    question.save()
    response = reader_client.post(reverse("forecast_submit", args=[question.pk]), {"probability": "50"})
    assert response.status_code == 400
    assert "no longer takes forecasts" in response.content.decode()
    assert not Prediction.objects.exists()


def test_anonymous_forecast_goes_to_login(client, question):
    response = client.post(reverse("forecast_submit", args=[question.pk]), {"probability": "50"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Prediction.objects.exists()


def test_forged_post_without_csrf_token_is_refused(reader, question):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reader)
    response = client.post(reverse("forecast_submit", args=[question.pk]), {"probability": "50"})
    assert response.status_code == 403
    assert not Prediction.objects.exists()


def test_multiple_choice_forecast_through_the_form(reader_client, reader):
    question = multiple_choice_question(labels=("A", "B"))
    a, b = question.options.all()
    url = reverse("forecast_submit", args=[question.pk])
    bad = reader_client.post(url, {f"option_{a.pk}": "60", f"option_{b.pk}": "50"})
    assert bad.status_code == 400 and "add up to 100%" in bad.content.decode()
    reader_client.post(url, {f"option_{a.pk}": "65.5", f"option_{b.pk}": "34.5"})
    assert Prediction.objects.get().option_probabilities == ["0.655", "0.345"]


@pytest.mark.parametrize(
    ("route", "args"),
    [
        ("question_action", ["close"]),
        ("question_action", ["open"]),
        ("editor_question_annul", []),
        ("editor_question_unresolve", []),
    ],
)
def test_editor_actions_are_forbidden_to_readers(reader_client, question, route, args):
    data = {"reason": "because", "confirm": "on"}
    response = reader_client.post(reverse(route, args=[question.pk, *args]), data)
    assert response.status_code == 403
    question.refresh_from_db()
    assert question.status == Question.Status.OPEN


def test_resolve_is_forbidden_to_readers(reader_client, question):
    response = reader_client.post(reverse("question_resolve", args=[question.pk]), {"outcome": "yes"})
    assert response.status_code == 403
    assert not question.resolutions.exists()


def test_editor_pages_forbidden_to_readers(reader_client):
    assert reader_client.get(reverse("editor_dashboard")).status_code == 403
    assert reader_client.get(reverse("editor_question_create")).status_code == 403


def test_editor_resolves_and_reader_sees_score(
    editor_client, reader_client, reader, question, django_capture_on_commit_callbacks
):
    reader_client.post(reverse("forecast_submit", args=[question.pk]), {"probability": "80"})
    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(
            reverse("question_resolve", args=[question.pk]),
            {"outcome": "yes", "source": "https://apnews.example/talks", "note": "AP"},
            follow=True,
        )
    assert "Resolved." in response.content.decode()
    assert Score.objects.filter(forecaster=reader, method="spot").count() == 4
    page = reader_client.get(question.get_absolute_url()).content.decode()
    assert "Resolved: Yes" in page
    assert 'data-score-kind="brier">0.0400<' in page


def test_second_resolution_with_other_outcome_shows_error(editor_client, question):
    editor_client.post(reverse("question_resolve", args=[question.pk]), {"outcome": "yes", "source": "AP"})
    response = editor_client.post(reverse("question_resolve", args=[question.pk]), {"outcome": "no", "source": "AP"})
    assert response.status_code == 400
    assert "already resolved" in response.content.decode()
    assert question.resolutions.get().outcome == "yes"


def test_editor_creates_and_opens_a_question(editor_client, question):
    response = editor_client.post(
        reverse("editor_question_create"),
        {
            "article": question.article.pk,
            "title": "Will the talks resume?",
            "resolution_criteria": "Per Reuters.",
            "question_type": "binary",
            "options": "",
            "opens_at": "2026-01-01T00:00",
            "closes_at": "2099-01-01T00:00",
        },
    )
    created = Question.objects.get(title="Will the talks resume?")
    assert response.status_code == 302 and created.status == "draft"
    editor_client.post(reverse("question_action", args=[created.pk, "open"]), {"note": "ready"})
    created.refresh_from_db()
    assert created.status == "open"
    assert list(QuestionEvent.objects.filter(question=created).values_list("action", flat=True)) == [
        "created",
        "opened",
    ]


def test_editor_create_form_reports_bad_dates(editor_client, question):
    response = editor_client.post(
        reverse("editor_question_create"),
        {
            "article": question.article.pk,
            "title": "Bad",
            "resolution_criteria": "x",
            "question_type": "binary",
            "opens_at": "2026-05-01T00:00",
            "closes_at": "2026-04-01T00:00",
        },
    )
    assert response.status_code == 400
    assert "close date must be after" in response.content.decode()
    assert not Question.objects.filter(title="Bad").exists()


def test_my_forecasts_lists_only_mine(reader_client, reader, question):
    PredictionFactory(question=question, forecaster=reader, probability=Decimal("0.33"))
    other = QuestionFactory(title="Someone else's question?")
    PredictionFactory(question=other)
    page = reader_client.get(reverse("my_forecasts")).content.decode()
    assert question.title in page and "33% yes" in page
    assert "Someone else" not in page


def test_reader_forecasts_from_the_article_page(reader_client, reader, question):
    article_url = question.article.get_absolute_url()
    page = reader_client.get(article_url).content.decode()
    assert f'action="{reverse("forecast_submit", args=[question.pk])}"' in page
    response = reader_client.post(
        reverse("forecast_submit", args=[question.pk]), {"probability": "22", "next": f"{article_url}#q{question.pk}"}
    )
    assert response.status_code == 302 and response["Location"] == f"{article_url}#q{question.pk}"
    assert Prediction.objects.get(forecaster=reader).probability == Decimal("0.22")


def test_next_cannot_redirect_off_site(reader_client, question):
    response = reader_client.post(
        reverse("forecast_submit", args=[question.pk]), {"probability": "22", "next": "https://evil.example/"}
    )
    assert response["Location"] == question.get_absolute_url()


def test_editor_resolves_a_multiple_choice_question_to_an_option(
    editor_client, reader, django_capture_on_commit_callbacks
):
    question = multiple_choice_question(labels=("Istanbul", "Geneva", "Riyadh"))
    services.prediction_create(question=question, forecaster=reader, option_probabilities=["0.2", "0.5", "0.3"])
    geneva = question.options.get(label="Geneva")
    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(
            reverse("question_resolve", args=[question.pk]), {"outcome": str(geneva.pk), "source": "Reuters"}
        )
    assert response.status_code == 302
    resolution = question.resolutions.get()
    assert (resolution.outcome, resolution.option) == ("option", geneva)
    brier = Score.objects.get(forecaster=reader, kind="brier", method="spot").value
    assert brier == Decimal("0.380000")  # 0.2^2 + 0.5^2 + 0.3^2
    page = editor_client.get(question.get_absolute_url()).content.decode()
    assert "Resolved: Geneva" in page


def test_resolve_form_rejects_an_option_of_another_question(editor_client):
    question = multiple_choice_question(labels=("A", "B"))
    stranger = multiple_choice_question(labels=("C", "D")).options.first()
    response = editor_client.post(
        reverse("question_resolve", args=[question.pk]), {"outcome": str(stranger.pk), "source": "Reuters"}
    )
    assert response.status_code == 400
    assert not question.resolutions.exists()


@pytest.mark.django_db
def test_editor_model_runs_page_reads_well(editor_client):
    ModelRun.objects.create(
        method="map", status="succeeded", duration_seconds=0.025, n_questions=1, n_forecasters=3, n_forecasts=3
    )
    ModelRun.objects.create(
        method="nuts", status="failed", duration_seconds=34.7, n_questions=500, n_forecasters=2000, n_forecasts=1
    )
    html = editor_client.get(reverse("editor_model_runs")).content.decode()
    assert "25 ms" in html and "34.7 s" in html  # a fast fit does not read as "0.0 s"
    assert "1 question<br>" in html and "3 forecasters" in html and "500 questions" in html and "1 forecast<" in html


def test_the_front_page_lists_the_newest_article_first(client):
    older = ArticleFactory(title="Older story", published_at=timezone.now() - dt.timedelta(days=40))
    newest = ArticleFactory(title="Newest story", published_at=timezone.now() - dt.timedelta(hours=1))
    middle = ArticleFactory(title="Middle story", published_at=timezone.now() - dt.timedelta(days=3))
    for article, n in ((older, 3), (newest, 1), (middle, 2)):  # the question counts must not decide the order
        QuestionFactory.create_batch(n, article=article)
    response = client.get(reverse("home"))
    assert [a.title for a in response.context["articles"]] == ["Newest story", "Middle story", "Older story"]


# --- the resolution panel: source, scores explained, related questions -----------------------------------


def test_the_resolution_panel_explains_each_of_the_readers_scores(client, editor, django_capture_on_commit_callbacks):
    from forecasting.views.questions import score_explanation

    question = QuestionFactory(opens_at=timezone.now() - dt.timedelta(days=5))
    sharp, dull = UserFactory.create_batch(2)
    services.prediction_create(question=question, forecaster=sharp, probability=Decimal("0.9"))
    services.prediction_create(question=question, forecaster=dull, probability=Decimal("0.2"))
    with django_capture_on_commit_callbacks(execute=True):  # the scoring task runs after the commit
        services.question_resolve(question=question, actor=editor, outcome="yes", note="https://example.org/ceasefire")
    client.force_login(sharp)
    page = client.get(question.get_absolute_url()).content.decode()
    assert 'href="https://example.org/ceasefire"' in page  # the source, linked
    assert "yours is better than a coin flip" in page
    assert "you beat the crowd" in page
    client.force_login(dull)
    page = client.get(question.get_absolute_url()).content.decode()
    assert "yours is worse than a coin flip" in page
    assert "the crowd beat you" in page
    assert score_explanation("brier", 0.25).endswith("no better than a coin flip.")
    assert score_explanation("baseline", 0) == "Points against a uniform guess: level with chance."
    assert score_explanation("log", None) == ""


def test_the_question_page_lists_the_articles_other_questions_but_no_drafts(client):
    question = QuestionFactory()
    sibling = QuestionFactory(article=question.article, title="Will the envoy return?")
    draft = QuestionFactory(article=question.article, title="Embargoed sibling", status=Question.Status.DRAFT)
    QuestionFactory(title="Another article's question")
    services.prediction_create(question=sibling, forecaster=UserFactory(), probability=Decimal("0.35"))
    response = client.get(question.get_absolute_url())
    related = [item["question"] for item in response.context["related"]]
    assert related == [sibling]
    assert draft.title not in response.content.decode()
    assert "35% ·" in response.content.decode()
