"""The question page in a real browser: the interactive chart, its ranges and table, the distribution."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from forecasting import services
from market import services as market_services
from market.models import MICRO
from tests.factories import QuestionFactory, UserFactory

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def busy_question():
    """A binary question open for six weeks, with forecasters, a market trade and history."""
    question = QuestionFactory(
        title="Will the backchannel talks produce a ceasefire by spring?",
        opens_at=timezone.now() - dt.timedelta(days=42),
    )
    users = UserFactory.create_batch(6)
    for i in range(18):
        services.prediction_create(
            question=question,
            forecaster=users[i % 6],
            probability=Decimal(("0.22", "0.35", "0.41", "0.58", "0.63", "0.71")[(i * 5) % 6]),
            now=timezone.now() - dt.timedelta(days=40 - i * 2.2),
        )
    market = market_services.market_create(question=question)
    market_services.trade_execute(
        user=users[0], market_id=market.pk, outcome=1, side="buy", idempotency_key="b1", shares=25 * MICRO
    )
    return question


def open_question_page(page: Page, question) -> None:
    page.goto(question.get_absolute_url())
    expect(page.locator(".qchart .uplot")).to_be_visible()


def test_the_chart_draws_axes_the_community_line_and_the_market(page: Page, busy_question):
    open_question_page(page, busy_question)

    legend = page.locator(".qchart .u-legend")
    expect(legend).to_contain_text("Community")
    expect(legend).to_contain_text("Market price")
    # uPlot draws the axes' tick labels on the canvas: the chart's axes config is what the page
    # exposes; check the canvas has been painted and sized to the figure.
    box = page.locator(".qchart canvas").first.bounding_box()
    assert box["width"] > 500 and box["height"] > 200
    assert page.evaluate("window.questionChart && window.questionChart.series.length") >= 3
    expect(page.locator(".qchart svg.chart")).to_be_hidden()  # the no-JavaScript drawing gives way
    assert_accessible(page)
    screenshot(page, "question")


def test_hovering_the_chart_shows_the_value_and_time(page: Page, busy_question):
    open_question_page(page, busy_question)
    over = page.locator(".qchart .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    community_value = page.locator(".qchart .u-legend .u-series").nth(1).locator(".u-value")
    expect(community_value).not_to_have_text("--")
    assert "%" in community_value.inner_text()
    time_value = page.locator(".qchart .u-legend .u-series").first.locator(".u-value")
    assert any(
        month in time_value.inner_text()
        for month in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )


def test_the_range_buttons_reload_the_chart_for_that_period(page: Page, busy_question):
    open_question_page(page, busy_question)
    week = page.get_by_role("button", name="1 week")
    with page.expect_response(lambda r: "history.json?range=1w" in r.url and r.status == 200):
        week.click()
    expect(week).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="All")).to_have_attribute("aria-pressed", "false")
    span_days = page.evaluate("(() => { const x = window.questionChart.scales.x; return (x.max - x.min) / 86400; })()")
    assert span_days < 9


def test_the_chart_has_a_table_for_screen_readers(page: Page, busy_question):
    open_question_page(page, busy_question)
    page.get_by_text("The chart's data as a table").click()
    rows = page.locator(".qchart-table tr")
    assert rows.count() >= 3
    expect(rows.nth(1)).to_contain_text("%")


def test_without_javascript_the_page_still_draws_the_history(browser, live_server, busy_question):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto(busy_question.get_absolute_url())
        expect(page.locator(".qchart svg.chart polyline")).to_be_visible()
        expect(page.locator(".qchart-ranges")).to_be_hidden()
    finally:
        context.close()


def test_the_distribution_shows_where_forecasters_stand(page: Page, busy_question):
    open_question_page(page, busy_question)
    expect(page.get_by_text("Where the 6 forecasters stand")).to_be_visible()
    assert page.locator(".histogram rect.bar").count() == 20


def test_the_question_page_fits_a_phone(page: Page, busy_question):
    at_phone_width(page)
    open_question_page(page, busy_question)
    box = page.locator(".qchart canvas").first.bounding_box()
    assert box["width"] <= 390
    assert_no_sideways_scroll(page)
    assert_accessible(page)
    screenshot(page, "question")


def test_a_resolved_question_explains_the_readers_scores(page: Page, sign_in, reader, editor):
    question = QuestionFactory(title="Did the envoy visit?", opens_at=timezone.now() - dt.timedelta(days=4))
    QuestionFactory(article=question.article, title="Will a second round follow?")
    services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.8"))
    services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal("0.3"))
    services.question_resolve(question=question, actor=editor, outcome="yes", note="https://example.org/visit")
    sign_in(reader)
    page.goto(question.get_absolute_url())
    panel = page.locator("section.resolution")
    expect(panel.get_by_role("heading", name="Resolved: YES")).to_be_visible()
    expect(panel.get_by_role("link", name="https://example.org/visit")).to_be_visible()
    expect(panel.locator("[data-score-explanation=brier]")).to_contain_text("better than a coin flip")
    expect(panel.locator("[data-score-explanation=peer]")).to_contain_text("you beat the crowd")
    expect(page.get_by_role("link", name="Will a second round follow?")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "resolved-question")
