"""A day of one question, end to end in a real browser: an editor writes it at the desk and opens it, a
reader forecasts it from the article, it closes at its close date with nobody acting (the scheduled
task), the editor resolves it from the desk's overdue queue with a source, and the reader finds the
notification with their score, and the e-mail with its unsubscribe link."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from forecasting.models import Prediction, Question, QuestionEvent, Score
from forecasting.tasks import close_due_questions
from tests.factories import ArticleFactory, UserFactory, editor_user

from .conftest import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


def test_a_question_from_the_desk_to_the_readers_score(page: Page, sign_in):
    editor = editor_user(username="erin")
    reader = UserFactory(username="rita", email="rita@example.org")
    article = ArticleFactory(title="Backchannel talks resume", slug="backchannel", body="First.\n\nSecond.")
    closes = timezone.now() + dt.timedelta(days=2)

    # The editor writes the question at the desk, previews it and opens it.
    sign_in(editor)
    page.goto("/editor/")
    page.get_by_role("link", name="New question").click()
    page.get_by_label("Article").select_option(label=article.title)
    page.get_by_label("Title").fill("Will the envoys meet again this week?")
    page.get_by_label("Resolution criteria").fill("Resolves YES if both envoys confirm a meeting.")
    page.get_by_label("Resolution source").fill("The foreign ministries' statements")
    page.get_by_label("Opens at (UTC)").fill((timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Closes at (UTC)").fill(closes.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("button", name="Open for forecasts").click()
    expect(page.locator(".messages")).to_contain_text("open for forecasts")
    question = Question.objects.get(title="Will the envoys meet again this week?")
    assert question.status == Question.Status.OPEN

    # A reader forecasts it without leaving the article.
    sign_in(reader)
    page.goto(article.get_absolute_url())
    card = page.locator(f'[data-question-card="{question.pk}"]')
    card.get_by_label("Your probability of YES (%)").fill("80")
    card.get_by_role("button", name="Forecast").click()
    card = page.locator(f'[data-question-card="{question.pk}"]')  # swapped in place
    expect(card.locator("[data-forecast-saved]")).to_be_visible()
    expect(card.locator("[data-mine]")).to_contain_text("80")
    assert page.url.endswith(article.get_absolute_url())
    assert Prediction.objects.get(question=question, forecaster=reader).probability == Decimal("0.80")

    # Its close date passes; the scheduler's task closes it, as the system, with nobody acting.
    # (time passes: the question's life moved back three days, its forecast with it)
    shift = dt.timedelta(days=3, hours=2)
    Question.objects.filter(pk=question.pk).update(
        opens_at=question.opens_at - shift, closes_at=timezone.now() - dt.timedelta(days=3)
    )
    Prediction.objects.filter(question=question).update(made_at=timezone.now() - shift)
    close_due_questions()
    close_due_questions()  # the next beat tick: nothing left to do
    question.refresh_from_db()
    assert question.status == Question.Status.CLOSED
    closing = question.events.get(action=QuestionEvent.Action.CLOSED)
    assert closing.automatic and closing.actor is None

    # The editor resolves it from the desk's overdue queue, with the source.
    sign_in(editor)
    page.goto("/editor/")
    item = page.locator("#awaiting .desk-item", has_text=question.title)
    expect(item).to_contain_text("3 days overdue")
    assert_accessible(page)
    item.get_by_role("link", name="Resolve").click()
    page.get_by_label("Outcome", exact=True).select_option("yes")
    page.get_by_label("Source").fill("https://mfa.example/statement")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#recent")).to_contain_text(question.title)
    brier = Score.objects.get(question=question, forecaster=reader, kind=Score.Kind.BRIER, method=Score.Method.SPOT)
    assert brier.value == Decimal("0.04")  # (1 - 0.8)^2: the reader's forecast, scored against YES

    # The reader sees the notification and, following it, the score on the question page.
    sign_in(reader)
    page.goto("/")
    expect(page.locator("[data-bell]")).to_have_attribute("aria-label", "Notifications, 1 unread")
    page.locator("[data-bell]").click()
    notice = page.locator("[data-notification]").first
    expect(notice).to_contain_text(f"Resolved: {question.title}")
    expect(notice).to_contain_text("Brier score: 0.0400")
    notice.get_by_role("button", name=f"Resolved: {question.title}").click()
    expect(page).to_have_url(re.compile(f"/questions/{question.pk}/$"))
    expect(page.locator('[data-score-kind="brier"]')).to_have_text("0.0400")
    assert_accessible(page)

    # ... and one e-mail, with a one-click unsubscribe.
    sent = [m for m in mail.outbox if m.to == ["rita@example.org"]]
    assert len(sent) == 1 and question.title in sent[0].subject
    assert "List-Unsubscribe" in sent[0].extra_headers
