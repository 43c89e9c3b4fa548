"""Editors' actions on questions (through the question services) and the model runs (editors, analysts)."""

import pytest
from django.utils import timezone

from forecasting.models import ModelRun, Question, QuestionEvent, Resolution
from tests.api_helpers import assert_error
from tests.factories import QuestionFactory, multiple_choice_question

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

ACTIONS = ["open", "close", "resolve", "annul", "unresolve"]


def action_url(question, action: str) -> str:
    return f"/api/v1/questions/{question.pk}/{action}/"


def test_editor_takes_a_question_through_its_life(editor_api, editor):
    question = QuestionFactory(status=Question.Status.DRAFT)
    opened = editor_api.post(action_url(question, "open"), {"note": "go"}, format="json")
    assert opened.status_code == 200, opened.json()
    assert opened.json()["status"] == "open" and opened.json()["market"]["status"] == "open"
    assert editor_api.post(action_url(question, "close")).json()["status"] == "closed"
    resolved = editor_api.post(action_url(question, "resolve"), {"outcome": "yes", "note": "it happened"}).json()
    assert resolved["status"] == "resolved"
    assert resolved["resolution"]["outcome"] == "yes" and resolved["resolution"]["note"] == "it happened"
    assert resolved["market"]["status"] == "resolved" and resolved["market"]["resolved_outcome"] == 1
    again = editor_api.post(action_url(question, "resolve"), {"outcome": "yes"})  # a double submit is harmless
    assert again.status_code == 200
    unresolved = editor_api.post(action_url(question, "unresolve"), format="json").json()
    assert unresolved["status"] == "closed" and unresolved["resolution"] is None
    annulled = editor_api.post(action_url(question, "annul")).json()
    assert annulled["status"] == "annulled" and annulled["resolution"]["outcome"] == "annulled"
    actions = list(QuestionEvent.objects.filter(question=question).values_list("action", "actor"))
    assert actions == [(a, editor.pk) for a in ("opened", "closed", "resolved", "unresolved", "annulled")]
    assert QuestionEvent.objects.get(question=question, action="opened").note == "go"


def test_editor_resolves_a_multiple_choice_question_to_an_option(editor_api):
    question = multiple_choice_question(status=Question.Status.CLOSED)
    green = question.options.get(label="Green")
    body = editor_api.post(action_url(question, "resolve"), {"option": green.pk}, format="json").json()
    assert body["resolution"]["option"] == green.pk and body["resolution"]["outcome_label"] == "Green"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "outcome"),
        ({"outcome": "maybe"}, "outcome"),
        ({"outcome": "yes", "option": 1}, "outcome"),
        ({"option": "x"}, "option"),
        ({"option": 999999}, "option"),
        ({"outcome": "yes", "note": "n" * 2001}, "note"),
    ],
)
def test_resolve_bad_input_is_a_400_naming_the_field(editor_api, question, data, field):
    assert_error(editor_api.post(action_url(question, "resolve"), data, format="json"), 400, "invalid", fields=(field,))
    assert not Resolution.objects.exists()


def test_resolving_a_multiple_choice_question_needs_an_option(editor_api):
    question = multiple_choice_question()
    response = editor_api.post(action_url(question, "resolve"), {"outcome": "yes"}, format="json")
    assert_error(response, 400, "invalid", fields=("outcome",))  # the service's message


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (Question.Status.OPEN, "open"),
        (Question.Status.DRAFT, "close"),
        (Question.Status.DRAFT, "resolve"),
        (Question.Status.RESOLVED, "annul"),
        (Question.Status.OPEN, "unresolve"),
    ],
)
def test_a_transition_the_question_does_not_allow_is_a_400_with_the_reason(editor_api, status, action):
    question = QuestionFactory(status=status)
    data = {"outcome": "yes"} if action == "resolve" else {}
    error = assert_error(editor_api.post(action_url(question, action), data, format="json"), 400, "invalid")
    assert question.status in error["message"] and error["fields"] == {}
    question.refresh_from_db()
    assert question.status == status


def test_opening_after_the_close_date_is_a_400(editor_api):
    question = QuestionFactory(
        status=Question.Status.CLOSED,
        opens_at=timezone.now() - timezone.timedelta(days=3),
        closes_at=timezone.now() - timezone.timedelta(days=1),
    )
    assert "close date" in assert_error(editor_api.post(action_url(question, "open")), 400, "invalid")["message"]


@pytest.mark.parametrize("action", ACTIONS)
def test_editor_actions_need_authentication(api, question, action):
    assert_error(api.post(action_url(question, action), {"outcome": "yes"}), 401, "not_authenticated")
    question.refresh_from_db()
    assert question.status == Question.Status.OPEN


@pytest.mark.parametrize("action", ACTIONS)
def test_editor_actions_are_forbidden_to_readers_and_analysts(reader_api, analyst_api, question, action):
    for client in (reader_api, analyst_api):
        error = assert_error(client.post(action_url(question, action), {"outcome": "yes"}), 403, "permission_denied")
        assert "permission" in error["message"]
    question.refresh_from_db()
    assert question.status == Question.Status.OPEN


def test_editor_action_on_unknown_question_is_404(editor_api):
    assert_error(editor_api.post("/api/v1/questions/999999/close/"), 404, "not_found")


# --- model runs -------------------------------------------------------------------------------------


@pytest.fixture
def runs():
    done = ModelRun.objects.create(
        method=ModelRun.Method.MAP,
        status=ModelRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        diagnostics={"converged": True},
        fit={"skill": [0.1]},
    )
    failed = ModelRun.objects.create(method=ModelRun.Method.NUTS, status=ModelRun.Status.FAILED, error="r_hat")
    return done, failed


@pytest.mark.parametrize("client_name", ["editor_api", "analyst_api"])
def test_editors_and_analysts_list_model_runs(request, runs, client_name):
    client = request.getfixturevalue(client_name)
    done, failed = runs
    body = client.get("/api/v1/model-runs/").json()
    assert [r["id"] for r in body["results"]] == [failed.pk, done.pk]
    assert [r["in_use"] for r in body["results"]] == [False, True]
    assert "fit" not in body["results"][0]
    only_failed = client.get("/api/v1/model-runs/", {"status": "failed"}).json()["results"]
    assert [r["id"] for r in only_failed] == [failed.pk]
    detail = client.get(f"/api/v1/model-runs/{done.pk}/").json()
    assert detail["fit"] == {"skill": [0.1]} and detail["diagnostics"] == {"converged": True}


def test_model_runs_bad_filter_is_a_400(analyst_api):
    assert_error(analyst_api.get("/api/v1/model-runs/", {"method": "magic"}), 400, "invalid", fields=("method",))


def test_model_runs_need_authentication_and_the_permission(api, reader_api, runs):
    done, _ = runs
    for url in ("/api/v1/model-runs/", f"/api/v1/model-runs/{done.pk}/"):
        assert_error(api.get(url), 401, "not_authenticated")
        assert_error(reader_api.get(url), 403, "permission_denied")


def test_unknown_model_run_is_404(analyst_api):
    assert_error(analyst_api.get("/api/v1/model-runs/999999/"), 404, "not_found")
