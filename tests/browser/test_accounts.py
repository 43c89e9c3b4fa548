"""Accounts in a real browser: sign up with an e-mail address, reset a forgotten password from the
e-mailed link, set a display name and a public profile, delete the account. axe-core on every page."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from forecasting import services
from forecasting.models import Question, Resolution
from notifications.models import Notification
from tests.factories import PredictionFactory, QuestionFactory, UserFactory, editor_user

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

PASSWORD = "correct horse battery"  # the factories' password
NEW_PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def scored_reader():
    """alice and bob, scored on one resolved question (so both are on the leaderboard)."""
    alice = UserFactory(username="alice", email="alice@example.org")
    bob = UserFactory(username="bob")
    start = timezone.now() - dt.timedelta(days=20)
    question = QuestionFactory(opens_at=start, closes_at=start + dt.timedelta(days=10), title="Resolved?")
    for user, p in ((alice, "0.8"), (bob, "0.3")):
        PredictionFactory(question=question, forecaster=user, probability=Decimal(p), made_at=start)
    Resolution.objects.create(question=question, outcome=Resolution.Outcome.YES, resolved_by=editor_user())
    Question.objects.filter(pk=question.pk).update(status=Question.Status.RESOLVED)
    services.question_scores_recompute(question_id=question.pk)
    return alice


def test_a_new_reader_signs_up_with_an_e_mail_address_and_lands_signed_in(page: Page):
    page.goto("/accounts/signup/")
    assert_accessible(page)
    page.get_by_label("Username").fill("newreader")
    page.get_by_label("E-mail address").fill("New.Reader@Example.org")
    page.get_by_label(re.compile(r"^Password:?$")).fill(NEW_PASSWORD)
    page.get_by_label(re.compile("Password confirmation")).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".who")).to_have_text("newreader")
    expect(page.locator(".messages")).to_contain_text("Welcome, newreader")
    assert User.objects.get(username="newreader").email == "new.reader@example.org"


def test_a_taken_address_is_explained_on_the_form(page: Page, problems):
    UserFactory(username="alice", email="alice@example.org")
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("alice2")
    page.get_by_label("E-mail address").fill("ALICE@example.org")
    page.get_by_label(re.compile(r"^Password:?$")).fill(NEW_PASSWORD)
    page.get_by_label(re.compile("Password confirmation")).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".errorlist")).to_contain_text("An account with this e-mail address already exists")
    assert_accessible(page)
    assert not User.objects.filter(username="alice2").exists()
    problems.expect("status of 400")  # Chromium logs the refusal's status; it is the expected answer


def test_a_reader_resets_a_forgotten_password_from_the_e_mail(page: Page, live_server, settings):
    settings.SITE_URL = live_server.url
    UserFactory(username="alice", email="alice@example.org")
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    assert_accessible(page)
    page.get_by_label("Email").fill("alice@example.org")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    assert_accessible(page)

    (message,) = mail.outbox
    link = re.search(r"https?://\S+", message.body).group(0)
    assert link.startswith(live_server.url)
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert_accessible(page)
    page.get_by_label(re.compile(r"^New password:?$")).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set my new password").click()
    expect(page.get_by_role("heading", name="Your new password is set")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Log in").last.click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_have_text("alice")

    page.goto(link)  # the link worked once
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    assert_accessible(page)


def test_a_reader_sets_a_display_name_and_a_public_profile(page: Page, sign_in, scored_reader):
    sign_in(scored_reader)
    page.goto("/me/profile/")
    page.get_by_label("Display name").fill("Ada L.")
    page.get_by_label(re.compile("^Public:")).check()
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".messages")).to_contain_text("now public")
    expect(page.locator(".lede")).to_contain_text("under the name “Ada L.”")
    assert_accessible(page)


def test_the_display_name_shows_on_the_leaderboard(page: Page, sign_in, scored_reader):
    services.profile_update(user=scored_reader, is_public=True, display_name="Ada L.")
    page.goto("/leaderboard/")  # as a visitor
    link = page.get_by_role("link", name="Ada L.")
    expect(link).to_be_visible()
    expect(page.get_by_role("link", name="alice")).to_have_count(0)
    link.click()
    expect(page).to_have_url(re.compile("/forecasters/alice/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada L.'s track record")


def test_the_profile_page_at_desktop_and_phone_widths(page: Page, sign_in, scored_reader):
    services.profile_update(user=scored_reader, is_public=True, display_name="Ada L.")
    sign_in(scored_reader)
    page.goto("/me/profile/")
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "profile")
    at_phone_width(page)
    page.reload()
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "profile")
    page.goto("/me/delete/")
    assert_accessible(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "account-delete")


def test_a_reader_deletes_the_account_and_is_logged_out(page: Page, sign_in, scored_reader):
    Notification.objects.create(recipient=scored_reader, kind="resolved", key="test", title="Resolved", url="/")
    sign_in(scored_reader)
    page.goto("/me/profile/")
    page.get_by_role("link", name="Delete my account…").click()
    expect(page.get_by_role("heading", name="Delete your account?")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Type your username to confirm").fill("alice")
    page.get_by_role("button", name="Delete my account").click()

    expect(page.locator(".messages")).to_contain_text("Your account is deleted")
    expect(page.locator(".who")).to_have_count(0)
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    assert_accessible(page)
    assert not User.objects.filter(username="alice").exists()
    assert not Notification.objects.filter(recipient=scored_reader).exists()

    page.goto("/leaderboard/")  # still two readers on the board, neither named alice
    expect(page.locator("table.leaderboard tbody tr, table.leaderboard tr:has(td)")).not_to_have_count(0)
    expect(page.get_by_text("alice")).to_have_count(0)
