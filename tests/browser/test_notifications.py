"""Notifications in a real browser: the bell's count after a resolution, the list, following an item
(marked read, the count drops), mark all read, the settings, and the e-mail's unsubscribe page."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from forecasting import services
from notifications import services as notification_services
from notifications.models import Delivery, Kind, NotificationPreference
from tests.factories import PredictionFactory, QuestionFactory, UserFactory

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


def bell(page: Page):
    return page.locator("[data-bell]")


def resolved_question_for(reader, editor, title="Will the bridge reopen by June?"):
    """A question the reader forecast, resolved YES by an editor: the scores and the notice follow
    (the transactions commit for real here, and the tasks run eagerly on commit)."""
    start = timezone.now() - dt.timedelta(days=10)
    question = QuestionFactory(title=title, opens_at=start, published_at=start)
    PredictionFactory(question=question, forecaster=reader, probability=Decimal("0.7"), made_at=start)
    PredictionFactory(question=question, forecaster=UserFactory(), probability=Decimal("0.4"), made_at=start)
    services.question_resolve(question=question, actor=editor, outcome="yes")
    return question


def some_notices(user, n: int) -> None:
    examples = [
        (
            Kind.CLOSING_SOON,
            "Closing soon: Will the council approve the budget?",
            "Forecasts close at 6 Dec 2026 18:00 UTC.",
        ),
        (
            Kind.COMMUNITY_MOVED,
            "The community moved: Will inflation fall below 3% this year?",
            "The community now says 64% yes; you said 35% on 2 Nov 2026 09:12 UTC. Still your view?",
        ),
        (Kind.COMMENT_REPLY, "bob replied to your comment on “Will the strike end by Friday?”", "Both sides say so."),
        (
            Kind.STALE_FORECAST,
            "Your forecast is 31 days old: Will the airport expansion be approved?",
            "You last forecast this question on 4 Nov 2026 10:00 UTC. Has anything changed since?",
        ),
    ]
    notification_services.notifications_create(
        drafts=[
            notification_services.Draft(user.pk, kind, f"test:{i}", title, "/questions/", body)
            for i, (kind, title, body) in enumerate((examples * n)[:n])
        ]
    )


def test_a_reader_hears_of_a_resolution_and_follows_the_notice(page: Page, sign_in, reader, editor):
    question = resolved_question_for(reader, editor)
    sign_in(reader)
    page.goto("/")
    expect(bell(page)).to_have_attribute("aria-label", "Notifications, 1 unread")
    expect(page.locator("[data-bell-count]")).to_have_text("1")
    assert_accessible(page)

    bell(page).click()
    expect(page).to_have_url(re.compile("/me/notifications/$"))
    item = page.locator("[data-notification]").first
    expect(item).to_contain_text(f"Resolved: {question.title}")
    expect(item).to_contain_text("Brier score: 0.0900")
    expect(item.locator(".badge.new")).to_be_visible()
    assert_accessible(page)

    item.get_by_role("button", name=f"Resolved: {question.title}").click()
    expect(page).to_have_url(re.compile(f"/questions/{question.pk}/$"))
    expect(bell(page)).to_have_attribute("aria-label", "Notifications")
    expect(page.locator("[data-bell-count]")).to_have_count(0)

    page.goto("/me/notifications/")
    expect(page.locator(".notification.is-unread")).to_have_count(0)
    expect(page.locator("[data-mark-all-read]")).to_have_count(0)


def test_mark_all_read_and_the_list_at_desktop_and_phone_widths(page: Page, sign_in, reader, editor):
    resolved_question_for(reader, editor)
    some_notices(reader, 4)
    sign_in(reader)
    page.goto("/me/notifications/")
    expect(page.locator("[data-notification]")).to_have_count(5)
    expect(page.locator(".notification.is-unread")).to_have_count(5)
    expect(bell(page)).to_have_attribute("aria-label", "Notifications, 5 unread")
    assert_accessible(page)
    screenshot(page, "notifications")
    at_phone_width(page)
    page.reload()
    assert_no_sideways_scroll(page)
    assert_accessible(page)
    screenshot(page, "notifications")

    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator(".messages")).to_contain_text("Marked 5 notifications read.")
    expect(page.locator(".notification.is-unread")).to_have_count(0)
    expect(bell(page)).to_have_attribute("aria-label", "Notifications")
    assert notification_services.unread_count(user=reader) == 0


def test_the_empty_list_says_what_will_appear(page: Page, sign_in, reader):
    sign_in(reader)
    page.goto("/me/notifications/")
    expect(page.locator("[data-empty-state]")).to_contain_text("No notifications yet.")
    assert_accessible(page)


def test_a_reader_changes_their_settings_and_unsubscribes_from_an_email(page: Page, sign_in, reader, editor):
    resolved_question_for(reader, editor)
    (message,) = [m for m in mail.outbox if m.to == [reader.email]]
    sign_in(reader)

    page.goto("/me/notifications/")
    page.get_by_role("link", name="Notification settings").click()
    assert_accessible(page)
    screenshot(page, "notification-preferences")
    moved = page.get_by_role("group", name=Kind.COMMUNITY_MOVED.label)
    moved.get_by_label("In the site and by e-mail").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Your notification settings are saved.")
    expect(
        page.get_by_role("group", name=Kind.COMMUNITY_MOVED.label).get_by_label("In the site and by e-mail")
    ).to_be_checked()
    assert NotificationPreference.objects.get(user=reader).community_moved == Delivery.EMAIL

    # The e-mail's link: GET asks (and writes nothing), the button unsubscribes.
    link = message.extra_headers["List-Unsubscribe"][1:-1].removeprefix(settings.SITE_URL)
    page.goto(link)
    expect(page.get_by_role("heading", name="Stop these e-mails?")).to_be_visible()
    assert NotificationPreference.objects.get(user=reader).resolved == Delivery.EMAIL
    assert_accessible(page)
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.locator("[data-unsubscribed]")).to_contain_text(Kind.RESOLVED.label)
    assert NotificationPreference.objects.get(user=reader).resolved == Delivery.SITE
    assert_accessible(page)


def test_a_broken_unsubscribe_link_is_explained(page: Page, problems):
    response = page.goto("/notifications/unsubscribe/not-a-token/")
    assert response.status == 400
    problems.expect("400")
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    assert_accessible(page)
