"""The editor desk (/editor/) and the editor's pages: what each queue holds, the actions one click away,
writing and previewing questions, resolving with a source, annulling and un-resolving through a
confirmation that asks why, and who may use them. GETs write nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from comments import services as comment_services
from forecasting import services
from forecasting.models import Question, QuestionEvent, Resolution
from forecasting.views.desk import _queues, register_desk_queue
from tests.api_helpers import client_for
from tests.factories import ArticleFactory, CommentFactory, PredictionFactory, QuestionFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]
NOW = timezone.now


@pytest.fixture
def editor_client(editor) -> Client:
    client = Client()
    client.force_login(editor)
    return client


@pytest.fixture
def reader_client(reader) -> Client:
    client = Client()
    client.force_login(reader)
    return client


def queue(response, name: str) -> dict:
    (shown,) = [q for q in response.context["queues"] if q.name == name]
    return shown.context


def titles(items) -> list[str]:
    return [getattr(item, "title", None) or item.question.title for item in items]


def past(**delta) -> dt.datetime:
    return NOW() - dt.timedelta(**delta)


def closed_question(editor, title: str, *, closed_days_ago: float) -> Question:
    """A question opened by an editor, then closed by one, its close date ``closed_days_ago``."""
    question = services.question_open(question=QuestionFactory(status=Question.Status.DRAFT, title=title), actor=editor)
    services.question_close(question=question, actor=editor)
    Question.objects.filter(pk=question.pk).update(
        opens_at=past(days=closed_days_ago + 10), closes_at=past(days=closed_days_ago)
    )
    return Question.objects.get(pk=question.pk)


# --- the queues ---------------------------------------------------------------------------------------


def test_each_queue_holds_what_the_editor_must_act_on(editor, editor_client):
    draft = QuestionFactory(status=Question.Status.DRAFT, title="Draft?")
    overdue = QuestionFactory(title="Overdue?", opens_at=past(days=9), closes_at=past(hours=2))
    recent_close = closed_question(editor, "Closed yesterday?", closed_days_ago=1.2)
    old_close = closed_question(editor, "Closed long ago?", closed_days_ago=10.5)
    quiet = QuestionFactory(title="Nobody yet?")
    busy = QuestionFactory(title="Forecast already?")
    PredictionFactory(question=busy)
    PredictionFactory(question=busy)
    fresh = closed_question(editor, "Resolved this week?", closed_days_ago=2)
    services.question_resolve(question=fresh, actor=editor, outcome="yes", source="https://ap.example/x")
    stale = closed_question(editor, "Resolved a month ago?", closed_days_ago=40)
    services.question_resolve(question=stale, actor=editor, outcome="no", source="AP")
    Resolution.objects.filter(question=stale).update(resolved_at=past(days=30))
    annulled = services.question_annul(question=QuestionFactory(title="Annulled?"), actor=editor, note="void")

    response = editor_client.get(reverse("editor_dashboard"))
    assert response.status_code == 200
    assert titles(queue(response, "drafts")["items"]) == [draft.title]
    assert titles(queue(response, "overdue")["items"]) == [overdue.title]
    awaiting = queue(response, "awaiting")["items"]
    assert titles(awaiting) == [old_close.title, recent_close.title]  # the longest waiting first
    assert [q.days_overdue for q in awaiting] == [10, 1]
    assert quiet.title in titles(queue(response, "quiet")["items"])
    assert busy.title not in titles(queue(response, "quiet")["items"])
    assert titles(queue(response, "recent")["items"]) == [annulled.question.title, fresh.title]
    page = response.content.decode()
    assert "10 days overdue" in page and "1 day overdue" in page
    assert reverse("editor_question_unresolve", args=[fresh.pk]) in page
    assert reverse("editor_question_resolve", args=[old_close.pk]) in page
    assert reverse("question_action", args=[overdue.pk, "close"]) in page
    assert reverse("editor_question_preview", args=[draft.pk]) in page


def test_the_audit_log_shows_who_did_what_and_the_system(editor, editor_client):
    question = QuestionFactory(title="Logged?", opens_at=past(days=3), closes_at=past(minutes=1))
    services.question_update(question=question, actor=editor, fine_print="Only official statements count.")
    services.questions_close_due()
    log = queue(editor_client.get(reverse("editor_dashboard")), "log")["events"]
    assert [(e.action, e.actor, e.automatic) for e in log[:2]] == [("closed", None, True), ("edited", editor, False)]
    page = editor_client.get(reverse("editor_dashboard")).content.decode()
    rows = re.findall(r'<tr data-event="\d+">(.*?)</tr>', page, re.S)
    assert "system" in rows[0] and "Closed automatically at its close date." in rows[0]
    assert "erin" in rows[1] and "Changed fine print." in rows[1]


def test_the_desk_reads_in_a_bounded_number_of_queries(editor, editor_client):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert editor_client.get(reverse("editor_dashboard")).status_code == 200
        return len(queries)

    def add_one_of_each(i: int) -> None:
        QuestionFactory(status=Question.Status.DRAFT)
        PredictionFactory(question=QuestionFactory(opens_at=past(days=9), closes_at=past(hours=1)))
        closed = closed_question(editor, f"Closed {i}?", closed_days_ago=3)
        PredictionFactory(question=closed)
        QuestionFactory()
        services.question_resolve(
            question=closed_question(editor, f"Done {i}?", closed_days_ago=2), actor=editor, outcome="yes"
        )
        comment = CommentFactory(question=closed)
        comment_services.comment_hide(comment=comment, actor=editor, reason="spam")

    add_one_of_each(0)
    few = count_queries()
    for i in range(1, 6):
        add_one_of_each(i)
    assert count_queries() == few


def test_a_get_of_the_desk_or_a_confirmation_writes_nothing(editor, editor_client, opened_question):
    QuestionFactory(opens_at=past(days=3), closes_at=past(minutes=1))  # due: only the scheduler closes it
    urls = [
        reverse("editor_dashboard"),
        reverse("editor_question_annul", args=[opened_question.pk]),
        reverse("editor_question_unresolve", args=[opened_question.pk]),
        reverse("editor_question_resolve", args=[opened_question.pk]),
        reverse("editor_question_preview", args=[opened_question.pk]),
        reverse("editor_question_edit", args=[opened_question.pk]),
    ]
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            assert editor_client.get(url).status_code == 200, url
        writes = [q["sql"] for q in queries if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.I)]
        assert not writes, (url, writes)


# --- who may use the editor's pages ----------------------------------------------------------------


EDITOR_PAGES = [
    ("editor_dashboard", False),
    ("editor_question_create", False),
    ("editor_question_edit", True),
    ("editor_question_preview", True),
    ("editor_question_resolve", True),
    ("editor_question_annul", True),
    ("editor_question_unresolve", True),
]


@pytest.mark.parametrize(("name", "takes_pk"), EDITOR_PAGES)
def test_readers_are_refused_and_visitors_sent_to_log_in(name, takes_pk, reader_client, client, opened_question):
    url = reverse(name, args=[opened_question.pk] if takes_pk else [])
    assert reader_client.get(url).status_code == 403
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    if name not in ("editor_dashboard", "editor_question_preview"):  # the two pages only read
        data = {"reason": "x", "confirm": "on", "outcome": "yes", "source": "AP", "title": "Hijacked?"}
        assert reader_client.post(url, data).status_code == 403
    opened_question.refresh_from_db()
    assert opened_question.status == Question.Status.OPEN and opened_question.title != "Hijacked?"


# --- writing a question -----------------------------------------------------------------------------


def form_data(article, **extra) -> dict:
    return {
        "article": article.pk,
        "title": "Will the talks resume in Muscat?",
        "resolution_criteria": "Resolves YES if both delegations meet in Muscat.",
        "fine_print": "A meeting by video does not count.",
        "resolution_source": "https://mfa.example/press",
        "question_type": "binary",
        "options": "",
        "opens_at": "2030-01-01T09:00",
        "closes_at": "2030-03-01T09:00",
        "paragraph": "2",
        **extra,
    }


def test_an_editor_creates_a_question_with_its_fine_print_and_source(editor_client):
    article = ArticleFactory(body="First.\n\nSecond.\n\nThird.")
    url = reverse("editor_question_create") + f"?article={article.pk}"
    page = editor_client.get(url).content.decode()
    assert "After paragraph 2: Second." in page  # the placement, chosen by the paragraph's words
    refused = editor_client.post(url, form_data(article, closes_at="2029-12-01T09:00"))
    assert refused.status_code == 400
    assert refused.context["form"].errors["closes_at"] == ["The close date must be after the open date."]
    assert not Question.objects.exists()
    response = editor_client.post(url, form_data(article))
    question = Question.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "editor_question_preview", args=[question.pk]
    )
    assert (question.status, question.paragraph, question.fine_print, question.resolution_source) == (
        "draft",
        2,
        "A meeting by video does not count.",
        "https://mfa.example/press",
    )


def test_the_preview_shows_the_question_as_readers_will_see_it_in_its_place(editor_client, editor):
    article = ArticleFactory(body="Diplomats met in Muscat.\n\nThe mood was cautious.\n\nMore talks are planned.")
    draft = services.question_create(
        actor=editor,
        article=article,
        title="Will a ceasefire hold?",
        resolution_criteria="Resolves YES if no shelling is reported for 30 days.",
        fine_print="Isolated incidents do not count.",
        resolution_source="UN OCHA daily reports",
        opens_at=NOW(),
        closes_at=NOW() + dt.timedelta(days=30),
        paragraph=1,
    )
    page = editor_client.get(reverse("editor_question_preview", args=[draft.pk])).content.decode()
    for text in (draft.title, "Isolated incidents do not count.", "UN OCHA daily reports", "after paragraph 1 of 3"):
        assert text in page
    assert page.index("Diplomats met in Muscat.") < page.index(f'data-question-card="{draft.pk}"')
    assert page.index(f'data-question-card="{draft.pk}"') < page.index("The mood was cautious.")
    assert "cannot see it yet" in page and 'name="probability"' not in page  # a preview takes no forecasts


def test_editing_an_open_question_moves_its_close_date_but_not_into_the_past(editor_client, opened_question):
    url = reverse("editor_question_edit", args=[opened_question.pk])
    form = editor_client.get(url).context["form"]
    assert form.fields["question_type"].disabled and form.fields["opens_at"].disabled
    data = {name: form[name].value() for name in form.fields if not form.fields[name].disabled}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    later = (opened_question.closes_at + dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    data["closes_at"] = later
    response = editor_client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    opened_question.refresh_from_db()
    assert opened_question.closes_at.strftime("%Y-%m-%dT%H:%M") == later
    assert opened_question.events.get(action="edited").note == "Changed close date."
    past_date = past(minutes=30).strftime("%Y-%m-%dT%H:%M")
    refused = editor_client.post(url, {**data, "closes_at": past_date})
    assert refused.status_code == 400 and "cannot be in the past" in refused.context["form"].errors["closes_at"][0]


def test_the_question_page_shows_fine_print_and_source_to_readers(reader_client, editor, opened_question):
    services.question_update(
        question=opened_question, actor=editor, fine_print="Only signed agreements.", resolution_source="Reuters"
    )
    panel = reader_client.get(opened_question.get_absolute_url()).content.decode()
    assert "Only signed agreements." in panel and "Reuters" in panel


# --- resolving, annulling, un-resolving ---------------------------------------------------------------


def test_resolving_needs_a_source_which_readers_then_see(editor, editor_client, reader_client):
    question = closed_question(editor, "Did the talks resume?", closed_days_ago=4)
    url = reverse("editor_question_resolve", args=[question.pk])
    refused = editor_client.post(url, {"outcome": "yes", "source": "  "})
    assert refused.status_code == 400
    assert refused.context["form"].errors["source"] == ["Give the source of the outcome: a link or a citation."]
    assert not question.resolutions.exists()
    response = editor_client.post(
        url, {"outcome": "yes", "source": "https://ap.example/talks", "next": "/editor/#awaiting"}
    )
    assert response.status_code == 302 and response["Location"] == "/editor/#awaiting"
    assert question.resolutions.get().source == "https://ap.example/talks"
    page = reader_client.get(question.get_absolute_url()).content.decode()
    assert 'href="https://ap.example/talks"' in page


def test_the_api_takes_an_optional_source(editor, question):
    api = client_for(editor)
    response = api.post(f"/api/v1/questions/{question.pk}/resolve/", {"outcome": "no", "source": "BBC"}, format="json")
    assert response.status_code == 200 and response.json()["resolution"]["source"] == "BBC"
    other = QuestionFactory()
    assert api.post(f"/api/v1/questions/{other.pk}/resolve/", {"outcome": "yes"}, format="json").status_code == 200
    assert other.resolutions.get().source == ""


def test_annulling_asks_why_and_for_a_confirmation(editor_client, opened_question):
    PredictionFactory(question=opened_question)
    PredictionFactory(question=opened_question)
    url = reverse("editor_question_annul", args=[opened_question.pk])
    page = editor_client.get(url).content.decode()
    assert "2 forecasters made forecasts" in page and "refunded" in page
    for data, field in (({"confirm": "on"}, "reason"), ({"reason": "The vote was cancelled."}, "confirm")):
        refused = editor_client.post(url, data)
        assert refused.status_code == 400 and field in refused.context["form"].errors
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.OPEN
    response = editor_client.post(url, {"reason": "The vote was cancelled.", "confirm": "on"})
    assert response.status_code == 302
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.ANNULLED
    assert opened_question.events.get(action="annulled").note == "The vote was cancelled."


def test_unresolving_says_how_many_lose_their_scores(editor_client, resolved_question):
    url = reverse("editor_question_unresolve", args=[resolved_question.pk])
    page = editor_client.get(url).content.decode()
    assert "3 forecasters will lose their scores" in page and "reversed" in page
    editor_client.post(url, {"reason": "Wrong source.", "confirm": "on"})
    assert Question.objects.get(pk=resolved_question.pk).status == Question.Status.CLOSED


def test_there_is_no_one_click_annul_any_more(editor_client, opened_question):
    response = editor_client.post(reverse("question_action", args=[opened_question.pk, "annul"]))
    assert response.status_code == 404
    assert Question.objects.get(pk=opened_question.pk).status == Question.Status.OPEN


def test_close_now_from_the_desk_returns_to_the_desk(editor, editor_client):
    overdue = services.question_open(question=QuestionFactory(status=Question.Status.DRAFT), actor=editor)
    Question.objects.filter(pk=overdue.pk).update(closes_at=past(minutes=3))
    url = reverse("question_action", args=[overdue.pk, "close"])
    response = editor_client.post(url, {"next": "/editor/#overdue"})
    assert response["Location"] == "/editor/#overdue"
    assert Question.objects.get(pk=overdue.pk).status == Question.Status.CLOSED
    assert editor_client.post(url, {"next": "https://evil.example/"}).status_code == 400  # already closed


# --- the hook: other apps' queues ---------------------------------------------------------------------


def test_another_app_adds_a_queue_and_may_leave_it_out(editor_client, reader):
    def context(request):
        return {"count": 3, "urgent": True} if request.GET.get("show") else None

    register_desk_queue("test-queue", title="A test queue", context=context, template="editor/_desk_more.html")
    try:
        shown = editor_client.get(reverse("editor_dashboard") + "?show=1")
        assert "A test queue" in shown.content.decode() and queue(shown, "test-queue")["count"] == 3
        hidden = editor_client.get(reverse("editor_dashboard"))
        assert "A test queue" not in hidden.content.decode()
    finally:
        _queues.pop("test-queue")


def test_hidden_comments_are_a_queue_with_their_unhide_action(editor, editor_client, opened_question):
    comment = CommentFactory(question=opened_question, author=UserFactory(username="troll"), body="Buy my pills")
    CommentFactory(question=opened_question, body="A fine comment")
    comment_services.comment_hide(comment=comment, actor=editor, reason="Spam")
    response = editor_client.get(reverse("editor_dashboard"))
    hidden = queue(response, "hidden-comments")
    assert [c.pk for c in hidden["items"]] == [comment.pk] and hidden["count"] == 1
    page = response.content.decode()
    assert "Buy my pills" in page and "by erin: Spam" in page
    assert reverse("comment_unhide", args=[comment.pk]) in page
    editor_client.post(reverse("comment_unhide", args=[comment.pk]), {"reason": "Unhidden from the editor desk."})
    assert not queue(editor_client.get(reverse("editor_dashboard")), "hidden-comments")["items"]
    assert QuestionEvent.objects.filter(question=opened_question).count() == 1  # only its opening
