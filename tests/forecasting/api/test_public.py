"""Public reads: articles, questions (with filters), aggregates, leaderboards; and question creation."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from forecasting import services
from forecasting.models import AggregateSnapshot, ModelRun, Question
from tests.api_helpers import assert_error
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, multiple_choice_question

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def forecast(question, *probabilities):
    for p in probabilities:
        services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal(p))


# --- articles -------------------------------------------------------------------------------------


def test_articles_list_is_public_and_paginated(api):
    article = ArticleFactory(section="World")
    QuestionFactory(article=article)
    QuestionFactory(article=article, status=Question.Status.DRAFT)
    ArticleFactory.create_batch(2, section="Sport")
    response = api.get("/api/v1/articles/", {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    world = api.get("/api/v1/articles/", {"section": "World"}).json()["results"]
    assert [a["slug"] for a in world] == [article.slug]
    assert world[0]["questions_open"] == 1 and world[0]["questions_published"] == 1
    assert world[0]["url"].endswith(f"/api/v1/articles/{article.slug}/")
    assert world[0]["web_url"].endswith(article.get_absolute_url())


@pytest.mark.parametrize("params", [{"page": 99}, {"page": "x"}])
def test_articles_list_bad_page_is_a_404_error_body(api, params):
    ArticleFactory()
    assert_error(api.get("/api/v1/articles/", params), 404, "not_found")


def test_page_size_is_capped(api):
    ArticleFactory.create_batch(3)
    body = api.get("/api/v1/articles/", {"page_size": 100_000}).json()
    assert len(body["results"]) == 3  # no error: capped at the maximum (200)


def test_article_detail_lists_visible_questions_with_community(api, editor_api):
    article = ArticleFactory()
    question = QuestionFactory(article=article)
    QuestionFactory(article=article, status=Question.Status.DRAFT, title="Secret draft?")
    forecast(question, "0.2", "0.6", "0.9")
    body = api.get(f"/api/v1/articles/{article.slug}/").json()
    assert body["body"] == article.body
    assert [q["title"] for q in body["questions"]] == [question.title]  # no drafts for readers
    community = body["questions"][0]["community"]
    assert community["forecasters"] == 3 and community["probability_yes"] == pytest.approx(0.6)
    assert body["leaderboard_url"].endswith(f"/api/v1/leaderboards/?article={article.slug}")
    titles = [q["title"] for q in editor_api.get(f"/api/v1/articles/{article.slug}/").json()["questions"]]
    assert "Secret draft?" in titles  # editors see drafts


def test_article_detail_unknown_is_404(api):
    assert_error(api.get("/api/v1/articles/no-such-article/"), 404, "not_found")


# --- questions ------------------------------------------------------------------------------------


def test_questions_list_filters(api):
    now = timezone.now()
    one, other = ArticleFactory.create_batch(2)
    soon = QuestionFactory(article=one, closes_at=now + dt.timedelta(days=2))
    late = QuestionFactory(article=one, closes_at=now + dt.timedelta(days=60))
    closed = QuestionFactory(article=other, status=Question.Status.CLOSED)
    choice = multiple_choice_question(article=other)
    QuestionFactory(article=one, status=Question.Status.DRAFT)

    def ids(**params):
        response = api.get("/api/v1/questions/", params)
        assert response.status_code == 200, response.json()
        return {q["id"] for q in response.json()["results"]}

    assert ids() == {soon.pk, late.pk, closed.pk, choice.pk}  # no drafts
    assert ids(article=one.slug) == {soon.pk, late.pk}
    assert ids(status="closed") == {closed.pk}
    assert ids(status=["closed", "open"]) == {soon.pk, late.pk, closed.pk, choice.pk}
    assert ids(type="multiple_choice") == {choice.pk}
    cutoff = (now + dt.timedelta(days=10)).isoformat()
    assert ids(closes_before=cutoff) == {soon.pk}
    assert late.pk in ids(closes_after=cutoff) and soon.pk not in ids(closes_after=cutoff)


def test_questions_list_shows_community_prediction(api, question):
    forecast(question, "0.3", "0.4")
    row = api.get("/api/v1/questions/").json()["results"][0]
    assert row["community"]["method"] == services.HEADLINE_METHOD
    assert row["community"]["forecasters"] == 2
    assert row["community"]["probabilities"] == pytest.approx([0.65, 0.35])
    assert row["accepts_forecasts"] is True


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "nope"}, "status"),
        ({"type": "trinary"}, "type"),
        ({"article": "no-such-article"}, "article"),
        ({"closes_before": "yesterday-ish"}, "closes_before"),
    ],
)
def test_questions_list_bad_filter_is_a_400_naming_it(api, params, field):
    error = assert_error(api.get("/api/v1/questions/", params), 400, "invalid", fields=(field,))
    assert field in error["message"]


def test_question_detail_has_options_aggregates_bayes_and_market(api, editor):
    question = multiple_choice_question(status=Question.Status.DRAFT)
    services.question_open(question=question, actor=editor)
    for probabilities in (["0.5", "0.3", "0.2"], ["0.2", "0.3", "0.5"]):
        services.prediction_create(question=question, forecaster=UserFactory(), option_probabilities=probabilities)
    body = api.get(f"/api/v1/questions/{question.pk}/").json()
    assert [o["label"] for o in body["options"]] == ["Red", "Green", "Blue"]
    assert body["resolution"] is None
    methods = {a["method"] for a in body["aggregates"]}
    assert {"mean", "median", services.HEADLINE_METHOD, "logodds_mean"} <= methods
    mean = next(a for a in body["aggregates"] if a["method"] == "mean")
    assert mean["probabilities"] == pytest.approx([0.35, 0.3, 0.35]) and mean["probability_yes"] is None
    market = body["market"]
    assert market["status"] == "open"
    assert [o["label"] for o in market["outcomes"]] == ["Red", "Green", "Blue"]
    assert sum(o["price"] for o in market["outcomes"]) == pytest.approx(1)
    assert (
        market["subsidy"]["micro"] > 0 and Decimal(market["subsidy"]["units"]) * 1_000_000 == market["subsidy"]["micro"]
    )
    assert market["quote_url"].endswith(f"/api/v1/questions/{question.pk}/market/quote/")


def test_question_detail_shows_the_bayes_aggregate_with_interval_and_model_run(api, question):
    forecast(question, "0.7")
    run = ModelRun.objects.create(method=ModelRun.Method.MAP, status=ModelRun.Status.SUCCEEDED)
    AggregateSnapshot.objects.create(
        question=question,
        method=services.BAYES_METHOD,
        at=timezone.now(),
        probabilities=[0.25, 0.75],
        forecasters=1,
        low=0.6,
        high=0.85,
        model_run=run,
    )
    bayes = next(a for a in api.get(f"/api/v1/questions/{question.pk}/").json()["aggregates"] if a["method"] == "bayes")
    assert bayes["probability_yes"] == 0.75 and (bayes["low"], bayes["high"]) == (0.6, 0.85)
    assert bayes["model_run"] == run.pk


def test_question_detail_hides_drafts_from_readers(api, reader_api, editor_api):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    assert_error(api.get(f"/api/v1/questions/{draft.pk}/"), 404, "not_found")
    assert_error(reader_api.get(f"/api/v1/questions/{draft.pk}/"), 404, "not_found")
    assert editor_api.get(f"/api/v1/questions/{draft.pk}/").json()["status"] == "draft"


# --- creating questions (editors) -------------------------------------------------------------------


def _new_question(article, /, **overrides):
    now = timezone.now()
    return {
        "article": article.slug,
        "title": "Will the talks resume?",
        "resolution_criteria": "Resolves YES if both sides meet.",
        "opens_at": now.isoformat(),
        "closes_at": (now + dt.timedelta(days=7)).isoformat(),
        **overrides,
    }


def test_editor_creates_a_draft_question(editor_api, editor):
    article = ArticleFactory()
    data = _new_question(article, question_type="multiple_choice", options=["A", "B"], note="from the API")
    response = editor_api.post("/api/v1/questions/", data, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft" and [o["label"] for o in body["options"]] == ["A", "B"]
    question = Question.objects.get(pk=body["id"])
    assert question.created_by == editor and question.events.get().note == "from the API"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"article": "nope"}, "article"),
        ({"title": ""}, "title"),
        ({"question_type": "multiple_choice", "options": ["Only one"]}, "options"),  # the service says
        ({"closes_at": "2000-01-01T00:00:00Z"}, "closes_at"),  # before opens_at: the service says
        ({"opens_at": "soon"}, "opens_at"),
    ],
)
def test_question_create_bad_input_is_a_400_naming_the_field(editor_api, overrides, field):
    response = editor_api.post("/api/v1/questions/", _new_question(ArticleFactory(), **overrides), format="json")
    assert_error(response, 400, "invalid", fields=(field,))
    assert not Question.objects.exists()


def test_question_create_needs_an_editor(api, reader_api, analyst_api):
    data = _new_question(ArticleFactory())
    assert_error(api.post("/api/v1/questions/", data, format="json"), 401, "not_authenticated")
    assert_error(reader_api.post("/api/v1/questions/", data, format="json"), 403, "permission_denied")
    assert_error(analyst_api.post("/api/v1/questions/", data, format="json"), 403, "permission_denied")
    assert not Question.objects.exists()


# --- aggregate history ------------------------------------------------------------------------------


def test_aggregate_history_by_method(api, question):
    forecast(question, "0.2", "0.8")
    body = api.get(f"/api/v1/questions/{question.pk}/aggregates/").json()
    assert body["count"] == 2
    assert [p["forecasters"] for p in body["results"]] == [1, 2]
    assert body["results"][0]["probability_yes"] == pytest.approx(0.2)
    assert body["results"][-1]["probability_yes"] == pytest.approx(0.5)  # the median of 0.2 and 0.8
    mean = api.get(f"/api/v1/questions/{question.pk}/aggregates/", {"method": "mean"}).json()["results"]
    assert mean[-1]["probabilities"] == pytest.approx([0.5, 0.5])
    assert api.get(f"/api/v1/questions/{question.pk}/aggregates/", {"method": "bayes"}).json()["count"] == 0


def test_aggregate_history_unknown_method_is_a_400(api, question):
    error = assert_error(
        api.get(f"/api/v1/questions/{question.pk}/aggregates/", {"method": "vibes"}), 400, "invalid", fields=("method",)
    )
    assert "vibes" in error["fields"]["method"][0]


def test_aggregate_history_of_unknown_or_draft_question_is_404(api):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    assert_error(api.get(f"/api/v1/questions/{draft.pk}/aggregates/"), 404, "not_found")
    assert_error(api.get("/api/v1/questions/999999/aggregates/"), 404, "not_found")


# --- leaderboards -----------------------------------------------------------------------------------


def test_leaderboard_global_and_per_article(api, resolved_question, settings):
    settings.LEADERBOARD_MIN_COVERAGE = 0.5
    body = api.get("/api/v1/leaderboards/").json()
    assert body["article"] is None and body["min_coverage"] == 0.5
    assert len(body["ranked"]) + len(body["unranked"]) == 3
    assert [r["rank"] for r in body["ranked"]] == list(range(1, len(body["ranked"]) + 1))
    assert body["ranked"][0]["mean_peer"] >= body["ranked"][-1]["mean_peer"]
    slug = resolved_question.article.slug
    per_article = api.get("/api/v1/leaderboards/", {"article": slug}).json()
    assert per_article["article"] == slug
    other = api.get("/api/v1/leaderboards/", {"article": ArticleFactory().slug}).json()
    assert other["ranked"] == [] and other["unranked"] == []


def test_leaderboard_unknown_article_is_a_400(api):
    assert_error(api.get("/api/v1/leaderboards/", {"article": "nope"}), 400, "invalid", fields=("article",))


# --- links to the downloads -------------------------------------------------------------------------


def test_questions_and_articles_link_to_their_downloads(api, question):
    url = api.get(f"/api/v1/questions/{question.pk}/").json()["download_url"]
    assert url == f"http://testserver/downloads/questions/{question.pk}/"
    url = api.get(f"/api/v1/articles/{question.article.slug}/").json()["download_url"]
    assert url == f"http://testserver/downloads/articles/{question.article.slug}/"
