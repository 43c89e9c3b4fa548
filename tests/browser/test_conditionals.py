"""A conditional pair in a real browser: an editor makes "if A, then B?" from two open questions, a reader
forecasts both branches on their pages and reads the difference the condition makes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from forecasting.models import Conditional, Prediction
from tests.factories import ArticleFactory, QuestionFactory, editor_user

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def questions():
    article = ArticleFactory(title="Talks in Istanbul", slug="talks-istanbul")
    condition = QuestionFactory(article=article, title="Will a ceasefire be signed by June?")
    outcome = QuestionFactory(article=article, title="Will sanctions be eased by December?")
    return condition, outcome


def test_an_editor_makes_a_pair_and_a_reader_forecasts_both_branches(page: Page, sign_in, reader, questions):
    condition, outcome = questions
    sign_in(editor_user(username="erin"))
    page.goto("/editor/")
    page.get_by_role("link", name="New conditional pair").click()
    page.get_by_label("If this question (the condition)").select_option(label=f"{condition.title} (Talks in Istanbul)")
    page.get_by_label("then this question (the outcome)").select_option(label=f"{outcome.title} (Talks in Istanbul)")
    assert_accessible(page)
    page.get_by_role("button", name="Create and open the pair").click()
    pair = Conditional.objects.get()
    expect(page).to_have_url(re.compile(rf"{pair.if_yes.get_absolute_url()}$"))
    expect(page.locator("#conditional")).to_contain_text("no forecasts yet")

    sign_in(reader)
    for branch, percent in ((pair.if_yes, "70"), (pair.if_no, "25")):
        page.goto(branch.get_absolute_url())
        panel = page.locator("#your-forecast")
        panel.get_by_label("Your probability of YES (%)").fill(percent)
        panel.get_by_role("button", name="Forecast").click()
        expect(page.locator("[data-forecast-saved]")).to_be_visible()
    assert Prediction.objects.filter(forecaster=reader).count() == 2

    page.reload()
    conditional = page.locator("#conditional")
    expect(conditional).to_contain_text("70%")
    expect(conditional).to_contain_text("25%")
    expect(conditional).to_contain_text("raises the outcome's chance by 45 points")
    expect(conditional.locator("tr.current")).to_contain_text("No")  # the branch this page is
    assert_accessible(page)
    screenshot(page, "conditional-branch")
    at_phone_width(page)
    page.reload()
    expect(page.locator("#conditional")).to_contain_text("45 points")
    assert_no_sideways_scroll(page)
    screenshot(page, "conditional-branch")
