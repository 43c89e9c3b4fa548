"""Numeric and date questions in a real browser: a reader types a median and an 80% interval, watches the
preview of the distribution follow, submits and sees the community's median move; the page with a crowd of
forecasts, at desktop and phone widths; an editor writes a numeric question and resolves a date question."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from forecasting import services
from forecasting.continuous import summary
from forecasting.forms import date_to_epoch
from forecasting.models import Prediction, Question, Resolution
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, editor_user, numeric_question

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

DAY = 86400
# A crowd of ten: (median, low, high) of ceasefire violations, oldest first
CROWD = [
    (120, 70, 200),
    (150, 90, 260),
    (95, 60, 150),
    (180, 110, 320),
    (130, 80, 210),
    (110, 75, 170),
    (210, 140, 380),
    (140, 95, 230),
    (160, 100, 300),
    (125, 85, 190),
]


@pytest.fixture
def article():
    return ArticleFactory(
        title="Ceasefire frays in the east", slug="ceasefire-frays", body="Monitors counted more incidents."
    )


@pytest.fixture
def violations(article):
    """How many violations in March? 0 to 500, open above, forecast by a crowd of ten over three weeks."""
    question = numeric_question(
        0,
        500,
        open_upper=True,
        unit="violations",
        article=article,
        title="How many ceasefire violations will the OSCE report in March?",
        resolution_criteria="The OSCE monitoring mission's count of ceasefire violations for March.",
        opens_at=timezone.now() - dt.timedelta(days=25),
    )
    for i, (median, low, high) in enumerate(CROWD):
        services.prediction_create(
            question=question,
            forecaster=UserFactory(),
            components=[{"median": median, "low": low, "high": high}],
            now=timezone.now() - dt.timedelta(days=22 - 2 * i),
        )
    return question


@pytest.fixture
def talks(article):
    """When will the talks resume? Over 2026, open after it, with a few forecasts."""
    first = date_to_epoch(dt.date(2026, 3, 1))
    question = QuestionFactory(
        article=article,
        question_type=Question.Type.DATE,
        title="When will the direct talks resume?",
        resolution_criteria="The first day both delegations meet in person, per the mediators.",
        range_min=first,
        range_max=date_to_epoch(dt.date(2026, 12, 31)),
        open_upper_bound=True,
        opens_at=timezone.now() - dt.timedelta(days=10),
    )
    for i, (median, low, high) in enumerate([(110, 40, 220), (90, 35, 180), (150, 70, 290), (120, 60, 250)]):
        services.prediction_create(
            question=question,
            forecaster=UserFactory(),
            components=[{"median": first + median * DAY, "low": first + low * DAY, "high": first + high * DAY}],
            now=timezone.now() - dt.timedelta(days=8 - 2 * i),
        )
    return question


def test_a_reader_types_a_median_and_interval_sees_the_preview_and_submits(
    page: Page, sign_in, reader, violations, problems
):
    sign_in(reader)
    page.goto(violations.get_absolute_url())
    community = page.locator("[data-community-continuous] [data-community-value]")
    before = community.inner_text()
    panel = page.locator("#your-forecast")
    preview = panel.locator("[data-forecast-preview]")
    expect(preview).to_contain_text("the shape of your forecast appears here")

    panel.get_by_label("Median", exact=True).fill("300")
    panel.get_by_label("Low end", exact=True).fill("220")
    panel.get_by_label("High end", exact=True).fill("400")
    expect(preview.locator("[data-preview-summary]")).to_contain_text(re.compile(r"median 3\d\d violations"))
    expect(preview.locator("svg.density-chart .line.mine")).to_be_visible()
    expect(preview.locator("svg.density-chart .area.community")).to_be_visible()  # over the community's
    expect(preview.locator("svg.cdf-chart")).to_be_visible()
    assert_accessible(page)

    # the preview follows the values as they change
    panel.get_by_label("Median", exact=True).fill("250")
    expect(preview.locator("[data-preview-summary]")).to_contain_text(re.compile(r"median 2[45]\d violations"))
    # a value that cannot be: the preview says what to fix (a 400, swapped in by htmx)
    panel.get_by_label("High end", exact=True).fill("200")
    expect(preview.locator("[data-preview-errors]")).to_contain_text("The high end must be above the median")
    problems.expect("status of 400")
    panel.get_by_label("High end", exact=True).fill("400")
    expect(preview.locator("[data-preview-summary]")).to_be_visible()

    panel.get_by_role("button", name="Forecast").click()
    expect(page.locator("[data-forecast-saved]")).to_contain_text("is saved")
    prediction = Prediction.objects.get(forecaster=reader)
    assert summary(prediction.cdf, violations.scale)["median"] == pytest.approx(250, abs=5)
    # the community's median moved, swapped in out of band, and the reader's density is drawn over it
    after = services.community_forecast(question=violations).probabilities
    median = violations.format_value(summary(after, violations.scale)["median"])
    expect(community).to_have_text(median)
    assert median != before
    expect(page.locator("[data-density-figure] svg .line.mine")).to_be_visible()
    expect(page.locator("[data-density-key] .key-mine")).to_contain_text("You: median")
    # the form starts from the new forecast
    expect(page.locator("#your-forecast").get_by_label("Median", exact=True)).to_have_value("250")
    assert_accessible(page)
    page.reload()
    expect(page.locator("[data-community-continuous] [data-community-value]")).to_have_text(median)


def test_a_reader_forecasts_a_date_with_date_pickers(page: Page, sign_in, reader, talks):
    sign_in(reader)
    page.goto(talks.get_absolute_url())
    panel = page.locator("#your-forecast")
    median = panel.get_by_label("Median", exact=True)
    assert median.get_attribute("type") == "date"
    median.fill("2026-06-15")
    panel.get_by_label("Low end", exact=True).fill("2026-04-20")
    panel.get_by_label("High end", exact=True).fill("2026-09-30")
    expect(panel.locator("[data-preview-summary]")).to_contain_text(re.compile(r"median 1\d Jun 2026"))
    panel.get_by_role("button", name="Forecast").click()
    expect(page.locator("[data-forecast-saved]")).to_be_visible()
    assert Prediction.objects.filter(forecaster=reader, question=talks).exists()
    assert_accessible(page)


def test_a_reader_forecasts_from_the_article_card(page: Page, sign_in, reader, article, violations):
    sign_in(reader)
    page.goto(article.get_absolute_url())
    card = page.locator(f"#q{violations.pk}")
    expect(card.locator("[data-community-distribution]")).to_contain_text(re.compile(r"median \d+ violations \(80%:"))
    card.get_by_label("Median", exact=True).fill("140")
    card.get_by_label("Low end", exact=True).fill("90")
    card.get_by_label("High end", exact=True).fill("230")
    expect(card.locator("[data-preview-summary]")).to_be_visible()
    card.get_by_role("button", name="Forecast").click()
    card = page.locator(f"#q{violations.pk}")
    expect(card.locator("[data-forecast-saved]")).to_be_visible()
    expect(card.locator("[data-mine]")).to_contain_text(re.compile(r"your median 1[34]\d violations"))
    assert page.url.endswith(article.get_absolute_url())
    assert_accessible(page)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_numeric_and_date_question_pages_read_well(page: Page, sign_in, reader, violations, talks, width):
    services.prediction_create(
        question=violations, forecaster=reader, components=[{"median": 260, "low": 180, "high": 420}]
    )
    sign_in(reader)
    if width == "phone":
        at_phone_width(page)
    for question, name in ((violations, "numeric-question"), (talks, "date-question")):
        page.goto(question.get_absolute_url())
        expect(page.locator("[data-density-chart] svg.density-chart")).to_be_visible()
        expect(page.locator("[data-fan] svg.fan-chart")).to_be_visible()
        assert_no_sideways_scroll(page)
        assert_accessible(page)
        screenshot(page, name)


def test_a_resolved_question_marks_the_outcome(
    page: Page, sign_in, reader, violations, django_capture_on_commit_callbacks
):
    services.prediction_create(
        question=violations, forecaster=reader, components=[{"median": 160, "low": 100, "high": 260}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.question_resolve(question=violations, actor=editor_user(), outcome="value", value=172.0, source="OSCE")
    sign_in(reader)
    page.goto(violations.get_absolute_url())
    expect(page.locator("section.resolution h2")).to_have_text("Resolved: 172 violations")
    expect(page.locator("[data-density-figure] svg line.outcome")).to_have_count(1)  # (a line: no area to be "visible")
    expect(page.locator("[data-density-key] .key-outcome")).to_have_text("Outcome: 172 violations")
    expect(page.locator("[data-score-kind=crps]")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "numeric-question-resolved")


def test_an_editor_writes_a_numeric_question(page: Page, sign_in, article):
    sign_in(editor_user(username="erin"))
    page.goto("/editor/questions/new/")
    range_fields = page.locator("[data-range-fields]")
    expect(range_fields).to_be_hidden()  # a yes/no question by default
    page.get_by_label("Article").select_option(label=article.title)
    page.get_by_label("Title").fill("How many monitors will the mission deploy?")
    page.get_by_label("Resolution criteria").fill("The mission's own figure on 1 June.")
    page.get_by_label("Type").select_option(label="Numeric")
    expect(range_fields).to_be_visible()
    expect(page.get_by_label("First day of the range")).to_be_hidden()  # date questions only
    expect(page.get_by_label("Options")).to_be_hidden()
    page.get_by_label("Low end of the range").fill("0")
    page.get_by_label("High end of the range").fill("2,000")
    page.get_by_label("Open high end").check()
    page.get_by_label("Unit").fill("monitors")
    page.get_by_label("Opens at (UTC)").fill("2031-03-01T09:00")
    page.get_by_label("Closes at (UTC)").fill("2031-06-01T09:00")
    assert_accessible(page)
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator("[data-range]")).to_contain_text("A number (monitors) from 0 monitors to 2,000 monitors")
    question = Question.objects.get(title="How many monitors will the mission deploy?")
    assert (question.range_min, question.range_max, question.open_upper_bound) == (0, 2000, True)


def test_an_editor_resolves_a_date_question_on_its_page(page: Page, sign_in, talks):
    sign_in(editor_user(username="erin"))
    page.goto(talks.get_absolute_url())
    form = page.locator("form#resolve")
    form.get_by_label("Outcome").select_option("value")
    form.get_by_label("Date", exact=True).fill("2026-07-04")
    form.locator("input[name=source]").fill("https://mediators.example/statement")
    assert_accessible(page)
    form.get_by_role("button", name="Resolve").click()
    expect(page.locator("section.resolution h2")).to_have_text("Resolved: 4 Jul 2026")
    assert Resolution.objects.get(question=talks).value == date_to_epoch(dt.date(2026, 7, 4))
