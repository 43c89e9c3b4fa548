"""The discussion on the question page: posting without JavaScript, moderation, rate limits, what readers see."""

import re

import pytest
from django.urls import reverse

from comments import services
from comments.models import Comment, CommentEvent, CommentVote
from forecasting import services as forecasting_services
from forecasting.models import Question
from tests.factories import CommentFactory, PredictionFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


def post_url(question) -> str:
    return reverse("comment_post", args=[question.pk])


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


def test_a_signed_in_reader_posts_and_lands_on_the_comment(reader_client, question, reader):
    response = reader_client.post(post_url(question), {"body": "Turnout *matters*."})
    comment = Comment.objects.get()
    assert (comment.author, comment.body) == (reader, "Turnout *matters*.")
    assert response.status_code == 302
    assert response["Location"] == f"{question.get_absolute_url()}#comment-{comment.pk}"
    page = reader_client.get(question.get_absolute_url()).content.decode()
    assert f'id="comment-{comment.pk}"' in page and "<em>matters</em>" in page


def test_a_visitor_is_sent_to_log_in_and_nothing_is_written(client, question):
    response = client.post(post_url(question), {"body": "hi"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Comment.objects.exists()


def test_a_reply_form_posts_into_the_thread(reader_client, question, bob):
    top = CommentFactory(question=question, author=bob)
    response = reader_client.post(post_url(question), {"body": "Agreed", "parent": top.pk})
    reply = Comment.objects.get(body="Agreed")
    assert reply.parent == top
    assert response["Location"].endswith(f"#comment-{reply.pk}")


def test_an_over_long_comment_is_refused_and_what_was_typed_stays(reader_client, question, settings):
    settings.COMMENT_MAX_LENGTH = 20
    response = reader_client.post(post_url(question), {"body": "A considered view that runs long"})
    assert response.status_code == 400
    assert not Comment.objects.exists()
    page = response.content.decode()
    assert "A considered view that runs long" in page
    assert "at most 20 characters" in page.lower()


def test_a_reply_to_a_comment_of_another_question_is_refused(reader_client, question):
    other = CommentFactory()
    response = reader_client.post(post_url(question), {"body": "x", "parent": other.pk})
    assert response.status_code == 400
    assert Comment.objects.count() == 1


def test_markup_a_reader_types_is_never_live_on_the_page(reader_client, question):
    body = '<script>alert("x")</script> <img src=x onerror=alert(1)> [click](javascript:alert(1))'
    reader_client.post(post_url(question), {"body": body})
    page = reader_client.get(question.get_absolute_url()).content.decode()
    discussion = page[page.index('id="discussion"') :]
    assert "<script>alert" not in discussion
    assert "<img" not in discussion
    assert 'href="javascript:' not in discussion.lower()
    assert "&lt;script&gt;" in discussion


def test_hidden_comments_are_never_shown_to_readers_but_editors_see_them_marked(client, question, reader, editor):
    comment = services.comment_create(question=question, author=reader, body="Something libellous")
    services.comment_hide(comment=comment, actor=editor, reason="Legal advice")
    for viewer in (None, reader, UserFactory()):
        if viewer:
            client.force_login(viewer)
        page = client.get(question.get_absolute_url()).content.decode()
        assert "Something libellous" not in page and "Legal advice" not in page
    client.force_login(editor)
    page = client.get(question.get_absolute_url()).content.decode()
    assert "Something libellous" in page and "Legal advice" in page and "is-hidden" in page


def test_an_editor_hides_and_unhides_with_a_reason_and_it_is_audited(client, question, reader, editor):
    comment = CommentFactory(question=question, author=reader)
    client.force_login(editor)
    response = client.post(reverse("comment_hide", args=[comment.pk]), {"reason": "Spam"})
    assert response.status_code == 302 and response["Location"].endswith(f"#comment-{comment.pk}")
    assert Comment.objects.get(pk=comment.pk).is_hidden
    client.post(reverse("comment_unhide", args=[comment.pk]), {"reason": ""})
    assert not Comment.objects.get(pk=comment.pk).is_hidden
    assert list(CommentEvent.objects.values_list("action", "reason")) == [("hide", "Spam"), ("unhide", "")]


def test_hiding_without_a_reason_is_refused(client, question, editor):
    comment = CommentFactory(question=question)
    client.force_login(editor)
    response = client.post(reverse("comment_hide", args=[comment.pk]), {"reason": " "})
    assert response.status_code == 400
    assert "Give the reason" in response.content.decode()
    assert not Comment.objects.get(pk=comment.pk).is_hidden


def test_a_reader_cannot_hide_nor_vote_on_what_they_cannot_see(reader_client, question, editor):
    comment = CommentFactory(question=question)
    assert reader_client.post(reverse("comment_hide", args=[comment.pk]), {"reason": "no"}).status_code == 403
    services.comment_hide(comment=comment, actor=editor, reason="spam")
    assert reader_client.post(reverse("comment_vote", args=[comment.pk]), {"value": "1"}).status_code == 404
    assert not CommentVote.objects.exists()


def test_voting_from_the_page_keeps_the_sort(reader_client, question):
    comment = CommentFactory(question=question)
    response = reader_client.post(reverse("comment_vote", args=[comment.pk]), {"value": "1", "sort": "top"})
    assert response["Location"] == f"{question.get_absolute_url()}?sort=top#comment-{comment.pk}"
    reader_client.post(reverse("comment_vote", args=[comment.pk]), {"value": "1"})
    assert list(CommentVote.objects.values_list("value", flat=True)) == [1]


def test_the_top_sort_puts_the_most_voted_first(client, question, reader, bob):
    liked, recent = (
        CommentFactory(question=question, body="liked one"),
        CommentFactory(question=question, body="recent one"),
    )
    services.comment_vote(comment=liked, voter=reader, value=1)
    newest = client.get(question.get_absolute_url()).content.decode()
    top = client.get(question.get_absolute_url() + "?sort=top").content.decode()
    assert newest.index("recent one") < newest.index("liked one")
    assert top.index("liked one") < top.index("recent one")
    assert recent.pk


def test_rationales_appear_with_the_forecast(client, question, reader):
    forecasting_services.profile_update(user=reader, is_public=True)
    PredictionFactory(question=question, forecaster=reader, probability="0.7", rationale="Polls **moved**.")
    page = client.get(question.get_absolute_url()).content.decode()
    section = page[page.index("Forecast rationales") :]
    assert "alice" in section and "70%" in section and "<strong>moved</strong>" in section


def test_a_private_readers_rationale_and_comment_show_no_forecast_to_others(client, question, reader):
    """A public page must not give a private reader's forecast and its time: joined with the export's
    (question, time, probability) rows it would name their pseudonym (issue 18, defect 8)."""
    PredictionFactory(question=question, forecaster=reader, probability="0.73", rationale="Polls **moved**.")
    services.comment_create(question=question, author=reader, body="see my rationale")
    page = client.get(question.get_absolute_url()).content.decode()
    section = page[page.index('id="discussion"') if 'id="discussion"' in page else page.index("Comments") :]
    assert "<strong>moved</strong>" in section and "alice" in section
    assert "73%" not in section and "forecast the" not in section
    client.force_login(reader)
    own = client.get(question.get_absolute_url()).content.decode()
    assert "73%" in own[own.index("Forecast rationales") :]


def test_the_comment_limit_answers_429_with_retry_after_and_writes_nothing(reader_client, question, settings):
    settings.COMMENT_RATE_LIMITS = {"account": ["2/m"], "ip": ["100/m"]}
    for i in range(2):
        assert reader_client.post(post_url(question), {"body": f"c{i}"}).status_code == 302
    response = reader_client.post(post_url(question), {"body": "one too many"})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Comment.objects.count() == 2


def test_the_per_address_limit_holds_across_accounts(client, question, settings):
    settings.COMMENT_RATE_LIMITS = {"account": ["100/m"], "ip": ["2/m"]}
    for i in range(3):
        client.force_login(UserFactory())
        response = client.post(post_url(question), {"body": f"sock puppet {i}"})
    assert response.status_code == 429
    assert Comment.objects.count() == 2


def test_the_page_costs_the_same_queries_for_2_or_20_comments(client, question, reader, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add(n):
        for i in range(n):
            author = UserFactory()
            PredictionFactory(question=question, forecaster=author, rationale=f"because {i}")
            top = CommentFactory(question=question, author=author)
            CommentFactory(question=question, author=reader, parent=top)

    client.force_login(reader)
    add(1)
    with CaptureQueriesContext(connection) as few:
        assert client.get(question.get_absolute_url()).content.decode().count('<article class="comment') == 2
    add(9)
    with django_assert_max_num_queries(len(few)):
        assert client.get(question.get_absolute_url()).content.decode().count('<article class="comment') == 20


def test_a_get_of_the_page_writes_nothing(client, question, reader):
    CommentFactory(question=question)
    client.force_login(reader)
    before = (Comment.objects.count(), CommentVote.objects.count(), CommentEvent.objects.count())
    client.get(question.get_absolute_url() + "?sort=top")
    assert (Comment.objects.count(), CommentVote.objects.count(), CommentEvent.objects.count()) == before


def test_the_discussion_has_no_inline_script_style_or_handlers(reader_client, question):
    CommentFactory(question=question)
    page = reader_client.get(question.get_absolute_url()).content.decode()
    discussion = page[page.index('id="discussion"') :]
    assert not re.search(r"<script(?![^>]*\bsrc=)|\sstyle=|\son[a-z]+=", discussion)


def test_the_discussion_is_a_full_width_section_under_the_page(client, question):
    page = client.get(question.get_absolute_url()).content.decode()
    assert page.index("</aside>") < page.index('id="discussion"')
    assert "Log in</a> to comment" in page


def test_a_draft_has_no_discussion_even_for_its_editor(client, editor):
    draft = QuestionFactory(status=Question.Status.DRAFT)
    client.force_login(editor)
    page = client.get(draft.get_absolute_url()).content.decode()
    assert 'id="discussion"' not in page
