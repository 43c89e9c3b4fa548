"""GET/POST /api/v1/questions/<id>/comments/: the discussion over the API, same rules as the page."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.services import account_delete
from comments import services
from comments.models import Comment
from forecasting import services as forecasting_services
from forecasting.models import Question
from tests.api_helpers import assert_error, client_for
from tests.factories import CommentFactory, PredictionFactory, QuestionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def url(question) -> str:
    return reverse("api:question-comments", args=[question.pk])


def test_anyone_reads_the_threads_with_replies_and_the_forecast_at_the_time(api, question, reader, bob):
    forecasting_services.profile_update(user=reader, is_public=True)
    PredictionFactory(question=question, forecaster=reader, probability=Decimal("0.62"))
    top = services.comment_create(question=question, author=reader, body="**Because** polls")
    services.comment_create(question=question, author=bob, body="reply", parent=top)
    response = api.get(url(question))
    assert response.status_code == 200
    (thread,) = response.json()["results"]
    assert thread["author"] == "alice" and thread["body_html"] == "<p><strong>Because</strong> polls</p>"
    assert Decimal(thread["forecast"]["probability"]) == Decimal("0.62")
    assert [(r["author"], r["forecast"]) for r in thread["replies"]] == [("bob", None)]
    assert "is_hidden" not in thread


def test_hidden_comments_are_left_out_for_readers_and_marked_for_editors(api, editor_api, question, reader, editor):
    hidden = services.comment_create(question=question, author=reader, body="gone")
    services.comment_create(question=question, author=reader, body="stays")
    services.comment_hide(comment=hidden, actor=editor, reason="spam")
    assert [c["body"] for c in api.get(url(question)).json()["results"]] == ["stays"]
    seen = {c["body"]: (c["is_hidden"], c["hidden_reason"]) for c in editor_api.get(url(question)).json()["results"]}
    assert seen == {"gone": (True, "spam"), "stays": (False, "")}


def test_a_draft_is_not_found_for_readers(api, reader_api):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    assert_error(api.get(url(draft)), 404, "not_found")
    assert_error(reader_api.post(url(draft), {"body": "x"}, format="json"), 404, "not_found")


def test_top_sort_orders_by_votes(api, question, reader, bob):
    plain, liked = CommentFactory(question=question, body="plain"), CommentFactory(question=question, body="liked")
    services.comment_vote(comment=liked, voter=reader, value=1)
    services.comment_vote(comment=plain, voter=bob, value=-1)
    assert [c["body"] for c in api.get(url(question), {"sort": "top"}).json()["results"]] == ["liked", "plain"]


def test_a_signed_in_reader_posts_a_comment_and_a_reply_to_a_reply_joins_the_thread(reader_api, question, bob):
    response = reader_api.post(url(question), {"body": "first"}, format="json")
    assert response.status_code == 201
    top = response.json()
    reply = client_for(bob).post(url(question), {"body": "second", "parent": top["id"]}, format="json").json()
    nested = reader_api.post(url(question), {"body": "third", "parent": reply["id"]}, format="json").json()
    assert (reply["parent"], nested["parent"]) == (top["id"], top["id"])


def test_posting_needs_credentials(api, question):
    assert_error(api.post(url(question), {"body": "x"}, format="json"), 401, "not_authenticated")
    assert not Comment.objects.exists()


def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(reader_api, question, settings):
    settings.COMMENT_MAX_LENGTH = 10
    assert_error(reader_api.post(url(question), {"body": "x" * 11}, format="json"), 400, "invalid", fields=("body",))
    assert_error(reader_api.post(url(question), {"body": ""}, format="json"), 400, "invalid", fields=("body",))
    assert_error(
        reader_api.post(url(question), {"body": "x", "parent": CommentFactory().pk}, format="json"),
        400,
        "invalid",
        fields=("parent",),
    )
    assert Comment.objects.count() == 1  # the other question's, made for the test


def test_an_annulled_question_takes_no_comments(reader_api):
    question = QuestionFactory(status=Question.Status.ANNULLED)
    assert_error(reader_api.post(url(question), {"body": "x"}, format="json"), 400, "invalid")


def test_the_rate_limit_is_a_429_with_retry_after_and_nothing_written(reader_api, question, settings):
    settings.COMMENT_RATE_LIMITS = {"account": ["1/m"], "ip": ["100/m"]}
    assert reader_api.post(url(question), {"body": "one"}, format="json").status_code == 201
    response = reader_api.post(url(question), {"body": "two"}, format="json")
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Comment.objects.count() == 1


def test_the_endpoint_is_in_the_schema(api):
    schema = api.get(reverse("api:schema"), {"format": "json"}).json()
    operations = schema["paths"]["/api/v1/questions/{id}/comments/"]
    assert set(operations) >= {"get", "post"}
    assert "429" in operations["post"]["responses"]


def test_a_private_readers_comment_shows_no_forecast_except_to_themselves(api, reader_api, question, reader):
    """The exports' pseudonyms must not be joinable with public pages (issue 18, defect 8)."""
    PredictionFactory(question=question, forecaster=reader, probability=Decimal("0.62"))
    services.comment_create(question=question, author=reader, body="my reasons")
    (thread,) = api.get(url(question)).json()["results"]
    assert thread["author"] == "alice" and thread["forecast"] is None
    (own,) = reader_api.get(url(question)).json()["results"]
    assert Decimal(own["forecast"]["probability"]) == Decimal("0.62")


def test_a_deleted_authors_comments_stay_without_their_name(api, question, bob):
    bob.set_password("a long pass phrase")
    bob.save()
    services.comment_create(question=question, author=bob, body="Still worth reading")
    account_delete(user=bob, password="a long pass phrase")
    (thread,) = api.get(url(question)).json()["results"]
    assert thread["author"] == "[deleted reader]" and thread["body"] == "Still worth reading"
