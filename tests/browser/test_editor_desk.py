"""What an editor does at the desk, in a real browser: write a question (a refused field first), preview
and open it; move an open question's close date; resolve an overdue question with its source; annul
with a reason through the confirmation. Screenshots of the desk at 1280 and 390 px."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from comments import services as comment_services
from forecasting import services
from forecasting.models import Question
from tests.factories import ArticleFactory, CommentFactory, PredictionFactory, QuestionFactory, editor_user

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

BODY = "Diplomats met quietly in Muscat last week.\n\nThe talks are the first since spring.\n\nThe mood is cautious."


@pytest.fixture
def desk_editor(sign_in):
    editor = editor_user(username="erin")
    sign_in(editor)
    return editor


@pytest.fixture
def article():
    return ArticleFactory(title="Backchannel talks resume", slug="backchannel-talks", body=BODY)


def _closed(editor, article, title: str, days_ago: int) -> Question:
    question = services.question_open(
        question=QuestionFactory(article=article, title=title, status=Question.Status.DRAFT), actor=editor
    )
    services.question_close(question=question, actor=editor)
    now = timezone.now()
    Question.objects.filter(pk=question.pk).update(
        opens_at=now - dt.timedelta(days=days_ago + 20), closes_at=now - dt.timedelta(days=days_ago)
    )
    return question


def test_an_editor_writes_a_question_previews_and_opens_it(page: Page, desk_editor, article, problems):
    page.goto("/editor/")
    page.get_by_role("link", name="New question").click()
    page.get_by_label("Article").select_option(label=article.title)
    page.get_by_label("Title").fill("Will the talks move to Geneva?")
    page.get_by_label("Resolution criteria").fill("Resolves YES if a round is held in Geneva.")
    page.get_by_label("Fine print").fill("A round by video does not count.")
    page.get_by_label("Resolution source").fill("https://mfa.example/press")
    page.get_by_label("Opens at (UTC)").fill("2031-03-01T09:00")
    page.get_by_label("Closes at (UTC)").fill("2031-01-01T09:00")
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator('[data-field="closes_at"] .errorlist')).to_contain_text("after the open date")
    problems.expect("status of 400")  # the refused form's answer, logged by Chromium
    assert_accessible(page)
    page.get_by_label("Closes at (UTC)").fill("2031-06-01T09:00")
    page.get_by_role("button", name="Create draft").click()

    expect(page.locator(".desk-preview-bar")).to_contain_text("readers cannot see it yet")
    expect(page.locator("[data-fine-print]")).to_contain_text("A round by video does not count.")
    expect(page.locator("[data-question-card]")).to_contain_text("Will the talks move to Geneva?")
    assert_accessible(page)
    screenshot(page, "editor-preview")
    page.get_by_role("button", name="Open for forecasts").click()
    expect(page.locator(".messages")).to_contain_text("open for forecasts")
    question = Question.objects.get(title="Will the talks move to Geneva?")
    assert question.status == Question.Status.OPEN and question.fine_print == "A round by video does not count."


def test_an_editor_moves_an_open_questions_close_date(page: Page, desk_editor, article):
    question = services.question_open(
        question=QuestionFactory(article=article, title="Will talks resume?", status=Question.Status.DRAFT),
        actor=desk_editor,
    )
    page.goto(question.get_absolute_url())
    page.locator(".editor").get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_label("Type")).to_be_disabled()
    page.get_by_label("Closes at (UTC)").fill("2032-02-02T12:00")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".meta").first).to_contain_text("closes 2 Feb 2032 12:00")
    assert_accessible(page)
    question.refresh_from_db()
    assert question.closes_at.year == 2032 and question.events.filter(action="edited").count() == 1


def test_an_editor_resolves_an_overdue_question_from_the_desk(page: Page, desk_editor, article, problems):
    old = _closed(desk_editor, article, "Did the envoy visit Tehran?", days_ago=12)
    _closed(desk_editor, article, "Did the talks end on time?", days_ago=2)
    page.goto("/editor/")
    awaiting = page.locator("#awaiting .desk-item")
    expect(awaiting.first).to_contain_text("Did the envoy visit Tehran?")
    expect(awaiting.first).to_contain_text("12 days overdue")
    awaiting.first.get_by_role("link", name="Resolve").click()
    page.get_by_label("Outcome", exact=True).select_option("yes")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator('[data-field="source"] .errorlist')).to_contain_text("Give the source")
    problems.expect("status of 400")  # the refused form's answer, logged by Chromium
    page.get_by_label("Source").fill("https://ap.example/envoy")
    page.get_by_role("button", name="Resolve").click()
    expect(page).to_have_url(re.compile(r"/editor/#awaiting$"))  # back at the desk
    expect(page.locator("#awaiting")).not_to_contain_text("Did the envoy visit Tehran?")
    expect(page.locator("#recent")).to_contain_text("Did the envoy visit Tehran?")
    assert old.resolutions.get().source == "https://ap.example/envoy"


def test_an_editor_annuls_with_a_reason_through_the_confirmation(page: Page, desk_editor, article, problems):
    question = services.question_open(
        question=QuestionFactory(article=article, title="Will the vote go ahead?", status=Question.Status.DRAFT),
        actor=desk_editor,
    )
    PredictionFactory(question=question)
    page.goto(question.get_absolute_url())
    page.get_by_role("link", name="Annul…").click()
    expect(page.locator("[data-consequences]")).to_contain_text("1 forecaster made forecasts")
    assert_accessible(page)
    screenshot(page, "editor-annul-confirm")
    page.get_by_label("I understand what this changes.").check()
    page.get_by_role("button", name="Annul").click()
    expect(page.locator('[data-field="reason"] .errorlist')).to_contain_text("Give the reason")
    problems.expect("status of 400")  # the refused form's answer, logged by Chromium
    assert Question.objects.get(pk=question.pk).status == Question.Status.OPEN
    page.get_by_label("Reason").fill("The vote was cancelled by decree.")
    page.get_by_label("I understand what this changes.").check()
    page.get_by_role("button", name="Annul").click()
    expect(page.locator("h1 .badge")).to_have_text("Annulled")
    expect(page.locator(".panel.resolution")).to_contain_text("The vote was cancelled by decree.")


def test_the_desk_reads_well_at_desktop_and_phone_widths(page: Page, desk_editor, article):
    now = timezone.now()
    due = QuestionFactory(article=article, title="Will the envoy stay a week?", closes_at=now - dt.timedelta(minutes=2))
    services.questions_close_due()  # the system's entry in the audit log
    services.question_resolve(question=due, actor=desk_editor, outcome="no", source="Reuters, 3 May")
    QuestionFactory(article=article, title="Will a second round be announced before the summer recess?", status="draft")
    QuestionFactory(
        article=article,
        title="Will the border reopen?",
        opens_at=now - dt.timedelta(days=9),
        closes_at=now - dt.timedelta(hours=3),
    )
    for days, title in ((12, "Did the envoy visit Tehran?"), (3, "Did the talks end on time?")):
        PredictionFactory(question=_closed(desk_editor, article, title, days_ago=days))
    QuestionFactory(article=article, title="Will turnout exceed 60%?")
    resolved = _closed(desk_editor, article, "Was the ceasefire signed?", days_ago=5)
    services.question_resolve(question=resolved, actor=desk_editor, outcome="yes", source="https://ap.example/signed")
    comment = CommentFactory(question=resolved, body="Click here for cheap watches!!!")
    comment_services.comment_hide(comment=comment, actor=desk_editor, reason="Spam")
    page.goto("/editor/")
    expect(page.locator("[data-tile=awaiting] .desk-count")).to_have_text("2")
    expect(page.locator("[data-tile=overdue]")).to_have_class("desk-tile urgent")
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "editor-desk")
    at_phone_width(page)
    page.reload()
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "editor-desk")
