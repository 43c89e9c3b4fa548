"""Finding questions, track records, the accuracy page and the leaderboards in a real browser; and
every page checked with axe-core at desktop and phone width, with no console error."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from forecasting import services
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, editor_user

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def world():
    """Two articles; open questions, and resolved ones scored for a public and a private reader."""
    editor = editor_user(username="desk")
    talks = ArticleFactory(title="Backchannel talks resume", slug="talks")
    budget = ArticleFactory(title="The city budget vote", slug="budget")
    ada = UserFactory(username="ada")
    services.profile_update(user=ada, is_public=True)
    bob = UserFactory(username="bob")  # private (the default)
    QuestionFactory(article=talks, title="Will a ceasefire be announced by March?")
    QuestionFactory(
        article=budget, title="Will the budget pass on the first vote?", closes_at=timezone.now() + dt.timedelta(days=3)
    )
    start = timezone.now() - dt.timedelta(days=20)
    for i in range(6):
        question = QuestionFactory(
            article=talks if i % 2 else budget,
            title=f"Will milestone {i} be reached?",
            opens_at=start,
            closes_at=timezone.now() + dt.timedelta(days=10),
        )
        for user, p in ((ada, ("0.8", "0.2")[i % 2 == 1 and i > 2]), (bob, "0.5")):
            services.prediction_create(
                question=question, forecaster=user, probability=Decimal(p), now=start + dt.timedelta(days=1)
            )
        services.question_resolve(question=question, actor=editor, outcome="yes" if i % 3 else "no")
    return {"ada": ada, "bob": bob, "talks": talks}


def test_a_reader_searches_filters_and_sorts_questions(page: Page, world):
    page.goto("/questions/")
    expect(page.locator("[data-question-row]")).to_have_count(8)
    page.get_by_label("Search").fill("ceasefire")
    page.get_by_role("button", name="Find").click()
    rows = page.locator("[data-question-row]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Will a ceasefire be announced by March?")

    page.get_by_label("Search").fill("")
    page.get_by_label("Resolved").check()
    page.get_by_role("button", name="Find").click()
    expect(rows).to_have_count(6)

    page.goto("/questions/")
    page.get_by_label("Closing within 7 days").check()
    page.get_by_role("button", name="Find").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("budget")

    page.goto("/questions/?q=nothing-matches-this")
    expect(page.locator("[data-empty-state]")).to_be_visible()
    assert_accessible(page)


def test_signed_in_readers_filter_by_what_they_forecast(page: Page, world, sign_in):
    sign_in(world["bob"])
    page.goto("/questions/")
    page.get_by_label("Your forecasts").select_option(index=1)  # the first choice after "All questions"
    page.get_by_role("button", name="Find").click()
    rows = page.locator("[data-question-row]")
    expect(rows).to_have_count(6)
    expect(rows.locator("[data-forecast-by-me]")).to_have_count(6)
    screenshot(page, "questions")


def test_a_public_track_record_shows_the_calibration_plot_and_the_comparison(page: Page, world):
    page.goto("/forecasters/ada/")
    expect(page.get_by_role("heading", name="Calibration")).to_be_visible()
    plot = page.locator("svg.reliability-plot").first
    expect(plot).to_be_visible()
    assert plot.locator("line, path, polyline").count() >= 1  # the diagonal at least
    expect(page.get_by_role("heading", name="Against the community")).to_be_visible()
    expect(page.get_by_role("link", name="Will milestone 1 be reached?")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "track-record")
    at_phone_width(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "track-record")


def test_a_private_track_record_shows_no_scores_to_others(page: Page, world):
    page.goto("/forecasters/bob/")
    expect(page.get_by_text(re.compile("private", re.I)).first).to_be_visible()
    expect(page.get_by_text("Will milestone 1 be reached?")).to_have_count(0)


def test_the_accuracy_page_compares_the_aggregates(page: Page, world):
    page.goto("/accuracy/")
    expect(page.get_by_role("heading", name="How accurate are our forecasts?")).to_be_visible()
    expect(page.locator("svg.reliability-plot").first).to_be_visible()
    expect(page.locator("main")).to_contain_text("Brier")
    assert_accessible(page)
    screenshot(page, "accuracy")
    at_phone_width(page)
    assert_no_sideways_scroll(page)
    screenshot(page, "accuracy")


def test_the_leaderboard_links_public_readers_to_their_track_records(page: Page, world):
    page.goto("/leaderboard/")
    expect(page.get_by_role("link", name="ada")).to_be_visible()
    expect(page.get_by_role("link", name="bob")).to_have_count(0)
    page.get_by_role("link", name="ada").click()
    expect(page).to_have_url(re.compile("/forecasters/ada/$"))


PAGES = [
    "/",
    "/articles/talks/",
    "/questions/",
    "/leaderboard/",
    "/market/leaderboard/",
    "/accuracy/",
    "/forecasters/ada/",
    "/accounts/login/",
    "/accounts/signup/",
]
SIGNED_IN_PAGES = ["/me/forecasts/", "/me/profile/", "/me/portfolio/"]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_passes_axe_and_fits_the_screen(page: Page, world, sign_in, width):
    page.set_viewport_size({"width": width, "height": 900})
    for path in PAGES:
        response = page.goto(path)
        assert response.status == 200, path
        assert_accessible(page)
        assert_no_sideways_scroll(page)
    sign_in(world["ada"])
    for path in [*SIGNED_IN_PAGES, "/questions/"]:
        response = page.goto(path)
        assert response.status == 200, path
        assert_accessible(page)
        assert_no_sideways_scroll(page)


CLS = """async () => {
    let total = 0;
    await new Promise((resolve) => {
        new PerformanceObserver((list) => {
            for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
        }).observe({type: "layout-shift", buffered: true});
        setTimeout(resolve, 1500);  // the chart and the polling have drawn by then
    });
    return total;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_do_not_shift_while_they_load(page: Page, world, width):
    """Cumulative layout shift under 0.1 (Google's "good") on the pages with scripts and charts."""
    page.set_viewport_size({"width": width, "height": 900})
    question = world["talks"].questions.filter(status="open").first()
    for path in ("/", world["talks"].get_absolute_url(), question.get_absolute_url(), "/accuracy/"):
        page.goto(path)
        shift = page.evaluate(CLS)
        assert shift < 0.1, f"{path} shifts by {shift:.3f} at {width} px"
