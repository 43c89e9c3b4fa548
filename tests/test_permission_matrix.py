"""Every route x every role -> the expected answer, generated from the URL resolver.

A route that is not in ``EXPECTED`` fails ``test_every_route_is_in_the_matrix``: no new page or
endpoint ships without someone deciding who may use it. Each route is requested as an anonymous
visitor, a reader, an editor and an analyst, with GET and (for routes that take writes) POST with an
empty body, and the answer is reduced to a category:

- ``ok``: 2xx, or a redirect somewhere other than the login page;
- ``login``: sent to log in (a redirect to the login page, or 401 from the API);
- ``denied``: 403; ``bad``: 400 (allowed, but the empty body is refused); ``405``: wrong method;
  ``404``: not found (for instance a draft the role may not see).

No answer may be a server error.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from forecasting import services
from forecasting.models import ModelRun, Question
from tests.factories import (
    ArticleFactory,
    CommentFactory,
    PredictionFactory,
    QuestionFactory,
    UserFactory,
    analyst_user,
    editor_user,
    numeric_question,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

ROLES = ("anonymous", "reader", "editor", "analyst")
SKIPPED_NAMESPACES = ("admin",)  # Django's admin has its own, tested, permission model
A, R, E, N = ROLES


def row(get: str, post: str) -> dict[str, dict[str, str]]:
    """Each method's answers as four words: anonymous, reader, editor, analyst."""
    return {method: dict(zip(ROLES, words.split(), strict=True)) for method, words in (("GET", get), ("POST", post))}


EVERYONE_READS = row("ok ok ok ok", "405 405 405 405")
SIGNED_IN_READS = row("login ok ok ok", "405 405 405 405")
ANALYSTS_READ = row("login denied denied ok", "405 405 405 405")
EDITOR_ACTION = row("login 405 405 405", "login denied ok denied")
API_EDITOR_ACTION = row("login denied 405 denied", "login denied ok denied")
EDITOR_ACTION_REFUSED = row("login 405 405 405", "login denied bad denied")

# Who may do what. Read-only pages refuse a POST (405). Bodies are empty, so an allowed write
# answers "bad" (400) where the empty body is invalid.
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    # the reader's pages
    "home": EVERYONE_READS,
    "article_detail": EVERYONE_READS,
    "question_list": EVERYONE_READS,
    "question_detail": EVERYONE_READS,
    "question_history": EVERYONE_READS,
    "leaderboard": EVERYONE_READS,
    "article_leaderboard": EVERYONE_READS,
    "track_record": EVERYONE_READS,
    "market_leaderboard": EVERYONE_READS,
    "accuracy": EVERYONE_READS,
    "profile_settings": row("login ok ok ok", "login bad bad bad"),
    "my_forecasts": SIGNED_IN_READS,
    "portfolio": SIGNED_IN_READS,
    "download_mine": SIGNED_IN_READS,
    "forecast_submit": row("login 405 405 405", "login bad bad bad"),
    # a numeric question's forecast preview: a read anyone who sees the question may do; no values: 400
    "forecast_preview": row("bad bad bad bad", "405 405 405 405"),
    "market_quote": row("bad bad bad bad", "405 405 405 405"),
    "market_trade": row("login 405 405 405", "login ok ok ok"),
    # the discussion (comments/): an empty comment, a vote without a value or a hide without a reason is
    # refused; unhiding a comment that is not hidden too
    "comment_post": row("login 405 405 405", "login bad bad bad"),
    "comment_vote": row("login 405 405 405", "login bad bad bad"),
    "comment_hide": EDITOR_ACTION_REFUSED,
    "comment_unhide": EDITOR_ACTION_REFUSED,
    "rationale_hide": EDITOR_ACTION_REFUSED,
    "rationale_unhide": EDITOR_ACTION_REFUSED,
    # accounts
    "signup": row("ok ok ok ok", "bad bad bad bad"),
    # accounts (accounts/): e-mail change is a POST from the profile page; deletion asks for the password
    "email_change": row("login 405 405 405", "login bad bad bad"),
    "account_delete": row("login ok ok ok", "login bad bad bad"),
    # notifications (notifications/): the list reads; items open by POST (no such item in the world: 404);
    # an empty settings form is refused; the world's "token" is not a valid unsubscribe token
    "notification_list": SIGNED_IN_READS,
    "notifications_read_all": row("login 405 405 405", "login ok ok ok"),
    "notification_open": row("login 405 405 405", "login 404 404 404"),
    "notification_preferences": row("login ok ok ok", "login bad bad bad"),
    "notification_unsubscribe": row("bad bad bad bad", "bad bad bad bad"),
    # questions in other sites' pages (forecasting/views/embeds.py); oEmbed without its url parameter is refused
    "question_embed": EVERYONE_READS,
    "oembed": row("bad bad bad bad", "405 405 405 405"),
    "question_card_image": EVERYONE_READS,
    # the editor desk's authoring and confirmation pages (forecasting/views/authoring.py, editor.py)
    "editor_question_edit": row("login denied ok denied", "login denied bad denied"),
    "editor_question_preview": row("login denied ok denied", "405 405 405 405"),
    "editor_question_resolve": row("login denied ok denied", "login denied bad denied"),
    "editor_question_annul": row("login denied ok denied", "login denied bad denied"),
    "editor_question_unresolve": row("login denied ok denied", "login denied bad denied"),
    "login": row("ok ok ok ok", "ok ok ok ok"),
    "logout": row("405 405 405 405", "ok ok ok ok"),
    "password_change": row("login ok ok ok", "login ok ok ok"),
    "password_change_done": row("login ok ok ok", "login 405 405 405"),
    "password_reset": row("ok ok ok ok", "bad bad bad bad"),  # an empty reset form is refused (400)
    "password_reset_done": row("ok ok ok ok", "405 405 405 405"),
    "password_reset_confirm": row("ok ok ok ok", "ok ok ok ok"),
    "password_reset_complete": row("ok ok ok ok", "405 405 405 405"),
    # the newsroom's pages
    "editor_dashboard": row("login denied ok denied", "405 405 405 405"),
    "editor_model_runs": row("login denied ok ok", "login denied ok denied"),
    "editor_question_create": row("login denied ok denied", "login denied bad denied"),
    "editor_conditional_create": row("login denied ok denied", "login denied bad denied"),
    "question_action": EDITOR_ACTION,
    "question_resolve": row("login 405 405 405", "login denied bad denied"),
    # analysts
    "analyst_downloads": ANALYSTS_READ,
    "download_all": ANALYSTS_READ,
    "download_article": ANALYSTS_READ,
    "download_question": ANALYSTS_READ,
    # the REST API
    "api:token": row("405 405 405 405", "bad bad bad bad"),
    "api:article-list": EVERYONE_READS,
    "api:article-detail": EVERYONE_READS,
    "api:question-list": row("ok ok ok ok", "login denied bad denied"),
    "api:question-detail": EVERYONE_READS,
    "api:question-aggregates": EVERYONE_READS,
    "api:question-scores": row("login denied denied ok", "login denied denied 405"),
    "api:question-open": row("login denied 405 denied", "login denied bad denied"),
    "api:question-close": API_EDITOR_ACTION,
    "api:question-resolve": row("login denied 405 denied", "login denied bad denied"),
    "api:question-annul": API_EDITOR_ACTION,
    "api:question-unresolve": row("login denied 405 denied", "login denied bad denied"),
    "api:leaderboard": EVERYONE_READS,
    "api:prediction-list": row("login ok ok ok", "login bad bad bad"),
    "api:my-scores": row("login ok ok ok", "login 405 405 405"),
    "api:model-run-list": row("login denied ok ok", "login denied 405 405"),
    "api:model-run-detail": row("login denied ok ok", "login denied 405 405"),
    "api:market-quote": row("bad bad bad bad", "405 405 405 405"),
    "api:trade-list": row("login ok ok ok", "login bad bad bad"),
    "api:download-all": row("login denied denied ok", "login denied denied 405"),
    "api:download-article": row("login denied denied ok", "login denied denied 405"),
    "api:download-question": row("login denied denied ok", "login denied denied 405"),
    "api:download-mine": row("login ok ok ok", "login 405 405 405"),
    "api:question-comments": row("ok ok ok ok", "login bad bad bad"),
    "api:schema": EVERYONE_READS,
    "api:docs": EVERYONE_READS,
    "api:redoc": EVERYONE_READS,
}


def _status(response) -> str:
    code = response.status_code
    if code >= 500:
        return f"server error {code}"
    if code == 401 or (code in (301, 302) and "/accounts/login/" in response.get("Location", "")):
        return "login"
    if code == 403:
        return "denied"
    if code < 400:
        return "ok"
    return {400: "bad", 404: "404", 405: "405"}.get(code, str(code))


@pytest.fixture
def world(db):
    editor = editor_user(username="erin")
    article = ArticleFactory(slug="talks")
    question = services.question_open(
        question=QuestionFactory(article=article, status=Question.Status.DRAFT), actor=editor
    )
    run = ModelRun.objects.create(method=ModelRun.Method.MAP, status=ModelRun.Status.SUCCEEDED)
    users = {R: UserFactory(username="alice"), E: editor, N: analyst_user(username="ann")}
    values = {"slug": article.slug, "pk": question.pk, "username": "alice", "action": "close"}
    values |= {"uidb64": "MQ", "token": "set-password"}  # a password-reset link (an invalid one)
    values["comment_id"] = CommentFactory(question=question).pk
    values["prediction_id"] = PredictionFactory(question=question, rationale="Because.").pk
    numeric = numeric_question(article=article, title="How many?")  # the forecast preview's question
    return {"users": users, "values": values, "run": run, "numeric": numeric}


def _patterns(patterns=None, namespace=None):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern


def _routes() -> set[str]:
    return {name for name, _ in _patterns() if name.split(":")[0] not in SKIPPED_NAMESPACES}


def _url(name: str, world) -> str:
    pattern = dict(_patterns())[name]
    values = world["values"]
    if name == "api:model-run-detail":
        values = dict(values, pk=world["run"].pk)
    elif name == "forecast_preview":  # numeric and date questions only (a yes/no question's preview is a 404)
        values = dict(values, pk=world["numeric"].pk)
    return reverse(name, kwargs={key: values[key] for key in pattern.pattern.regex.groupindex})


def _answers(name: str, world) -> dict[str, dict[str, str]]:
    """Each role's answer to GET and to an empty POST, each on its own client (fresh session)."""
    url = _url(name, world)
    answers: dict[str, dict[str, str]] = {"GET": {}, "POST": {}}
    for role in ROLES:
        for method in ("GET", "POST"):
            client = APIClient()
            if role != A:
                client.force_login(world["users"][role])
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, {}, format="json" if name.startswith("api:") else None)
            answers[method][role] = _status(response)
    return answers


def test_every_route_is_in_the_matrix():
    assert _routes() == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_role_gets_the_expected_answer(name, world):
    assert _answers(name, world) == EXPECTED[name]
