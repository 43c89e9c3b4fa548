"""comments/services.py: who may write what, threads one level deep, moderation kept and audited, votes."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from comments import services
from comments.models import Comment, CommentEvent, CommentVote
from forecasting.models import Question
from tests.factories import CommentFactory, PredictionFactory, QuestionFactory, multiple_choice_question

pytestmark = pytest.mark.django_db


def test_a_reader_comments_and_the_body_is_kept_as_written(question, reader):
    comment = services.comment_create(question=question, author=reader, body="  I think **yes**.  ")
    assert (comment.question, comment.author, comment.body, comment.parent) == (
        question,
        reader,
        "I think **yes**.",
        None,
    )


@pytest.mark.parametrize("body", ["", "   \n "])
def test_an_empty_comment_is_refused(question, reader, body):
    with pytest.raises(ValidationError):
        services.comment_create(question=question, author=reader, body=body)
    assert not Comment.objects.exists()


def test_an_over_long_comment_is_refused_with_the_limit(question, reader, settings):
    settings.COMMENT_MAX_LENGTH = 50
    services.comment_create(question=question, author=reader, body="x" * 50)
    with pytest.raises(ValidationError, match="At most 50 characters"):
        services.comment_create(question=question, author=reader, body="x" * 51)
    assert Comment.objects.count() == 1


@pytest.mark.parametrize("status", [Question.Status.OPEN, Question.Status.CLOSED, Question.Status.RESOLVED])
def test_open_closed_and_resolved_questions_take_comments(reader, status):
    question = QuestionFactory(status=status)
    assert services.comment_create(question=question, author=reader, body="ok").pk


def test_an_annulled_question_takes_no_comments(reader):
    question = QuestionFactory(status=Question.Status.ANNULLED)
    with pytest.raises(ValidationError, match="not taking comments"):
        services.comment_create(question=question, author=reader, body="hello")


def test_a_draft_is_refused_even_to_an_editor_who_sees_it(reader, editor):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    with pytest.raises(PermissionDenied):
        services.comment_create(question=draft, author=reader, body="leak?")
    with pytest.raises(ValidationError):
        services.comment_create(question=draft, author=editor, body="not yet")
    assert not Comment.objects.exists()


def test_a_reply_to_a_reply_joins_the_top_level_thread(question, reader, bob):
    top = services.comment_create(question=question, author=reader, body="top")
    reply = services.comment_create(question=question, author=bob, body="reply", parent=top)
    nested = services.comment_create(question=question, author=reader, body="reply to reply", parent=reply)
    assert reply.parent == top
    assert nested.parent == top


def test_a_reply_must_be_on_the_same_question(question, reader):
    elsewhere = CommentFactory()
    with pytest.raises(ValidationError, match="another question"):
        services.comment_create(question=question, author=reader, body="x", parent=elsewhere)


def test_a_hidden_comment_takes_no_replies(question, reader, bob, editor):
    top = services.comment_create(question=question, author=reader, body="top")
    reply = services.comment_create(question=question, author=bob, body="reply", parent=top)
    services.comment_hide(comment=top, actor=editor, reason="abuse")
    for parent in (top, reply):
        with pytest.raises(ValidationError, match="hidden"):
            services.comment_create(question=question, author=bob, body="more", parent=parent)
    assert Comment.objects.count() == 2


def test_hiding_keeps_the_comment_records_who_and_why_and_audits(question, reader, editor):
    comment = services.comment_create(question=question, author=reader, body="rude")
    services.comment_hide(comment=comment, actor=editor, reason="Personal attack")
    comment.refresh_from_db()
    assert (comment.is_hidden, comment.hidden_by, comment.hidden_reason) == (True, editor, "Personal attack")
    assert comment.body == "rude"
    services.comment_unhide(comment=comment, actor=editor, reason="On appeal")
    comment.refresh_from_db()
    assert (comment.is_hidden, comment.hidden_by, comment.hidden_at) == (False, None, None)
    events = list(CommentEvent.objects.filter(comment=comment).values_list("action", "actor", "reason"))
    assert events == [("hide", editor.pk, "Personal attack"), ("unhide", editor.pk, "On appeal")]


def test_only_editors_moderate(question, reader, bob):
    comment = services.comment_create(question=question, author=reader, body="x")
    with pytest.raises(PermissionDenied):
        services.comment_hide(comment=comment, actor=bob, reason="I disagree")
    assert not Comment.objects.get(pk=comment.pk).is_hidden
    assert not CommentEvent.objects.exists()


def test_hiding_needs_a_reason_and_cannot_happen_twice(question, reader, editor):
    comment = services.comment_create(question=question, author=reader, body="x")
    with pytest.raises(ValidationError):
        services.comment_hide(comment=comment, actor=editor, reason="  ")
    services.comment_hide(comment=comment, actor=editor, reason="spam")
    with pytest.raises(ValidationError, match="already hidden"):
        services.comment_hide(comment=comment, actor=editor, reason="spam again")
    with pytest.raises(ValidationError, match="not hidden"):
        services.comment_unhide(comment=CommentFactory(question=question), actor=editor)
    assert CommentEvent.objects.count() == 1


def test_voting_twice_the_same_way_counts_once_and_zero_withdraws(question, reader, bob):
    comment = services.comment_create(question=question, author=reader, body="x")
    assert services.comment_vote(comment=comment, voter=bob, value=1) == 1
    assert services.comment_vote(comment=comment, voter=bob, value=1) == 1
    assert services.comment_vote(comment=comment, voter=bob, value=-1) == -1
    assert CommentVote.objects.count() == 1
    assert services.comment_vote(comment=comment, voter=bob, value=0) == 0
    assert not CommentVote.objects.exists()


def test_no_vote_on_your_own_or_a_hidden_comment_nor_an_invalid_value(question, reader, bob, editor):
    comment = services.comment_create(question=question, author=reader, body="x")
    with pytest.raises(ValidationError, match="own comment"):
        services.comment_vote(comment=comment, voter=reader, value=1)
    for value in (2, True, "1"):
        with pytest.raises(ValidationError):
            services.comment_vote(comment=comment, voter=bob, value=value)
    services.comment_hide(comment=comment, actor=editor, reason="spam")
    with pytest.raises(ValidationError, match="hidden"):
        services.comment_vote(comment=comment, voter=bob, value=1)
    assert not CommentVote.objects.exists()


def test_the_discussion_sorts_newest_or_top_and_replies_oldest_first(question, reader, bob, editor):
    old = services.comment_create(question=question, author=reader, body="old")
    new = services.comment_create(question=question, author=bob, body="new")
    first_reply = services.comment_create(question=question, author=bob, body="r1", parent=old)
    second_reply = services.comment_create(question=question, author=editor, body="r2", parent=old)
    services.comment_vote(comment=old, voter=bob, value=1)
    newest = services.discussion(question=question, viewer=reader, sort="newest")
    assert [t.comment for t in newest.threads] == [new, old]
    assert newest.threads[1].replies == [first_reply, second_reply]
    top = services.discussion(question=question, viewer=reader, sort="top")
    assert [(t.comment, t.comment.score) for t in top.threads] == [(old, 1), (new, 0)]
    assert services.discussion(question=question, viewer=reader, sort="bogus").sort == "newest"


def test_hidden_comments_and_replies_under_them_are_for_editors_only(question, reader, bob, editor):
    top = services.comment_create(question=question, author=reader, body="top")
    services.comment_create(question=question, author=bob, body="reply", parent=top)
    kept = services.comment_create(question=question, author=bob, body="fine")
    services.comment_hide(comment=top, actor=editor, reason="abuse")
    readers_view = services.discussion(question=question, viewer=bob, sort="newest")
    assert [t.comment for t in readers_view.threads] == [kept]
    assert readers_view.comment_count == 1
    editors_view = services.discussion(question=question, viewer=editor, sort="newest")
    assert [(t.comment.body, len(t.replies)) for t in editors_view.threads] == [("fine", 0), ("top", 1)]


def test_each_comment_shows_the_authors_forecast_when_it_was_written(question, reader, bob):
    now = timezone.now()
    PredictionFactory(
        question=question, forecaster=reader, probability=Decimal("0.30"), made_at=now - dt.timedelta(hours=2)
    )
    PredictionFactory(
        question=question, forecaster=reader, probability=Decimal("0.70"), made_at=now - dt.timedelta(hours=1)
    )
    comment = services.comment_create(question=question, author=reader, body="why 70")
    PredictionFactory(question=question, forecaster=reader, probability=Decimal("0.90"), made_at=timezone.now())
    unforecast = services.comment_create(question=question, author=bob, body="no forecast")
    by_pk = {t.comment.pk: t.comment for t in services.discussion(question=question, viewer=None).threads}
    assert by_pk[comment.pk].forecast_probability == Decimal("0.7000")
    assert by_pk[unforecast.pk].forecast_probability is None


def test_a_multiple_choice_forecast_is_described_per_option(reader):
    question = multiple_choice_question(labels=("Red", "Blue"))
    PredictionFactory(question=question, forecaster=reader, probability=None, option_probabilities=["0.25", "0.75"])
    services.comment_create(question=question, author=reader, body="blue")
    found = services.discussion(question=question, viewer=None)
    comment = found.threads[0].comment
    pairs = services.describe_forecast(comment.forecast_probability, comment.forecast_options, found.option_labels)
    assert pairs == [("Red", 0.25), ("Blue", 0.75)]


def test_forecasts_with_a_rationale_are_listed_newest_first(question, reader, bob):
    PredictionFactory(question=question, forecaster=reader, rationale="Polls moved.")
    PredictionFactory(question=question, forecaster=bob, rationale="")
    later = PredictionFactory(question=question, forecaster=bob, rationale="Base rates.")
    assert [p.rationale for p in services.discussion(question=question, viewer=None).rationales] == [
        later.rationale,
        "Polls moved.",
    ]
