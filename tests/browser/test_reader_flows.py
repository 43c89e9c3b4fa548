"""What a reader does, in a real browser: sign up, forecast from the article, update, forecast by
keyboard only and without JavaScript, see the chart and the community number move, comment."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from forecasting import services
from forecasting.models import Prediction
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, editor_user, multiple_choice_question

from .conftest import assert_accessible, assert_no_sideways_scroll, at_phone_width, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

BODY = "\n\n".join(
    [
        "Diplomats from both sides met quietly in Muscat last week, officials said.",
        "The talks are the first since the spring offensive stalled.",
        "Negotiators describe the mood as cautious but workable.",
    ]
)


@pytest.fixture
def article():
    article = ArticleFactory(title="Backchannel talks resume", slug="backchannel-talks", body=BODY)
    QuestionFactory(article=article, title="Will a ceasefire be announced by March?", paragraph=1)
    QuestionFactory(article=article, title="Will the talks move to a public venue?")
    multiple_choice_question(article=article, title="Who will host the next round?", labels=("Oman", "Qatar", "Egypt"))
    return article


def card(page: Page, title: str):
    return page.locator("[data-question-card]").filter(has_text=title)


def test_a_new_reader_signs_up_and_forecasts_from_the_article(page: Page, article):
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("newreader")
    page.get_by_label("E-mail address").fill("newreader@example.org")
    page.get_by_label(re.compile(r"^Password:?$")).fill("a long and unusual passphrase 42")
    page.get_by_label(re.compile("Password confirmation")).fill("a long and unusual passphrase 42")
    page.get_by_role("button", name=re.compile("Sign up|Create")).click()
    expect(page.locator(".who")).to_have_text("newreader")

    page.goto(article.get_absolute_url())
    ceasefire = card(page, "Will a ceasefire be announced by March?")
    ceasefire.get_by_label("Your probability of YES (%)").fill("35")
    ceasefire.get_by_role("button", name="Forecast").click()

    ceasefire = card(page, "Will a ceasefire be announced by March?")
    expect(ceasefire.locator("[data-forecast-saved]")).to_be_visible()
    expect(ceasefire.locator("[data-forecasters]")).to_have_text("1 forecaster")
    expect(ceasefire.locator("[data-mine]")).to_contain_text("35")
    assert page.url.endswith(article.get_absolute_url())  # never left the article
    assert Prediction.objects.get(forecaster__username="newreader").probability == Decimal("0.35")


def test_the_card_sits_at_the_paragraph_that_raises_it(page: Page, article):
    page.goto(article.get_absolute_url())
    first_paragraph_then_card = page.locator("xpath=//p[contains(., 'met quietly in Muscat')]/following-sibling::*[1]")
    expect(first_paragraph_then_card).to_contain_text("Will a ceasefire be announced by March?")
    cards = page.locator("[data-question-card]")
    expect(cards).to_have_count(3)
    expect(cards.last).to_contain_text("Who will host the next round?")  # no paragraph: after the text


def test_a_reader_updates_a_forecast_and_sees_the_change_before_submitting(page: Page, article, sign_in, reader):
    question = article.questions.get(title="Will a ceasefire be announced by March?")
    services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.40"))
    sign_in(reader)
    page.goto(article.get_absolute_url())
    ceasefire = card(page, question.title)
    ceasefire.get_by_label("Your probability of YES (%)").fill("47")
    expect(ceasefire.locator("[data-change]")).to_contain_text("+7")
    ceasefire.get_by_role("button", name="Update forecast").click()
    expect(card(page, question.title).locator("[data-mine]")).to_contain_text("47")
    assert [p.probability for p in Prediction.objects.filter(forecaster=reader)] == [Decimal("0.40"), Decimal("0.47")]


def test_a_reader_forecasts_with_the_keyboard_only(page: Page, article, sign_in, reader):
    sign_in(reader)
    question = article.questions.get(title="Will a ceasefire be announced by March?")
    page.goto(article.get_absolute_url())
    slider = page.locator(f"#p-{question.pk}-slider")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    number = page.locator(f"#p-{question.pk}")
    expect(number).to_have_value("55")
    expect(slider).to_have_attribute("aria-valuetext", "55%")
    page.keyboard.press("Tab")  # to the number
    expect(number).to_be_focused()
    page.keyboard.press("Enter")  # submits the form
    expect(card(page, question.title).locator("[data-forecast-saved]")).to_be_visible()
    assert Prediction.objects.get(forecaster=reader).probability == Decimal("0.55")


def test_a_refused_forecast_is_explained_in_place_and_saves_nothing(page: Page, article, sign_in, reader, problems):
    sign_in(reader)
    question = article.questions.get(title="Will a ceasefire be announced by March?")
    page.goto(article.get_absolute_url())
    ceasefire = card(page, question.title)
    ceasefire.get_by_label("Your probability of YES (%)").fill("150")
    ceasefire.get_by_role("button", name="Forecast").click()
    expect(card(page, question.title).locator(".errorlist")).to_contain_text("99")
    expect(page.locator(f"#p-{question.pk}")).to_have_attribute("aria-invalid", "true")
    assert not Prediction.objects.exists()
    problems.expect("status of 400")  # Chromium logs the refusal's status; it is the expected answer


def test_multiple_choice_shows_the_running_total(page: Page, article, sign_in, reader):
    sign_in(reader)
    page.goto(article.get_absolute_url())
    host = card(page, "Who will host the next round?")
    host.get_by_label("Oman").fill("50")
    host.get_by_label("Qatar").fill("30")
    expect(host.locator("[data-sum]")).to_contain_text("80")
    host.get_by_label("Egypt").fill("20")
    expect(host.locator("[data-sum]")).to_contain_text("100")
    host.get_by_role("button", name="Forecast").click()
    expect(card(page, "Who will host the next round?").locator("[data-forecast-saved]")).to_be_visible()
    assert Prediction.objects.get(forecaster=reader).option_probabilities == ["0.5", "0.3", "0.2"]


def test_without_javascript_a_forecast_returns_to_the_card(browser, live_server, article, reader):
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(reader)
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    try:
        page = context.new_page()
        question = article.questions.get(title="Will the talks move to a public venue?")
        page.goto(article.get_absolute_url())
        page.locator(f"#p-{question.pk}").fill("62")
        card(page, question.title).get_by_role("button", name="Forecast").click()
        expect(page).to_have_url(re.compile(rf"{article.get_absolute_url()}#q{question.pk}$"))
        expect(card(page, question.title).locator("[data-mine]")).to_contain_text("62")
    finally:
        context.close()


def test_the_article_page_is_accessible_and_fits_a_phone(page: Page, article, sign_in, reader):
    sign_in(reader)
    page.goto(article.get_absolute_url())
    assert_accessible(page)
    screenshot(page, "article")
    at_phone_width(page)
    page.reload()
    assert_no_sideways_scroll(page)
    assert_accessible(page)
    screenshot(page, "article")


def test_a_forecast_on_the_question_page_updates_the_number_and_the_chart(page: Page, sign_in, reader):
    question = QuestionFactory(opens_at=timezone.now() - dt.timedelta(days=5))
    services.prediction_create(
        question=question,
        forecaster=UserFactory(),
        probability=Decimal("0.20"),
        now=timezone.now() - dt.timedelta(days=2),
    )
    sign_in(reader)
    page.goto(question.get_absolute_url())
    expect(page.locator("[data-community-value]").first).to_have_text("20%")
    page.get_by_label("Your probability of YES (%)").fill("80")
    with page.expect_response(lambda r: "history.json" in r.url):
        page.get_by_role("button", name="Forecast").click()
    expect(page.locator("[data-forecast-saved]")).to_be_visible()
    expect(page.locator("[data-community-value]").first).not_to_have_text("20%")
    wait_until(
        page, "() => !!window.questionChart && window.questionChart.series.some(s => s.label === 'Your forecasts')"
    )


def test_the_community_number_refreshes_when_others_forecast(page: Page):
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal("0.30"))
    page.clock.install()
    page.goto(question.get_absolute_url())
    number = page.locator("[data-community-value]").first
    expect(number).to_have_text("30%")
    for p in ("0.90", "0.90"):
        services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal(p))
    page.clock.run_for(31_000)  # the page polls every 30 s
    expect(number).to_have_text("90%")


def test_a_reader_comments_and_replies_and_an_editor_hides_a_comment(
    browser, live_server, context: BrowserContext, page: Page, sign_in, reader
):
    question = QuestionFactory()
    services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.65"))
    sign_in(reader)
    page.goto(question.get_absolute_url())
    page.get_by_label(re.compile("^(Your comment|Comment)")).fill(
        "The envoy's **visit** matters. <script>alert(1)</script>"
    )
    page.get_by_role("button", name="Post comment").click()
    comment = page.locator("article.comment").first
    expect(comment.locator("strong").filter(has_text="visit")).to_be_visible()  # Markdown rendered
    expect(comment).to_contain_text("forecast 65%")  # the author's forecast at the time
    assert page.locator("article.comment script").count() == 0

    page.locator("details.reply summary").first.click()
    reply_box = page.locator("textarea[id^='reply-']").first
    reply_box.fill("Agreed, and the timing too.")
    reply_box.locator("xpath=ancestor::form").get_by_role("button", name="Reply").click()
    expect(page.get_by_text("Agreed, and the timing too.")).to_be_visible()

    editor_context = browser.new_context(base_url=live_server.url)
    try:
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(editor_user())
        editor_context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        desk = editor_context.new_page()
        desk.goto(question.get_absolute_url())
        first = desk.locator("article.comment").filter(has_text="envoy").first
        first.get_by_label("Why hide").fill("Off topic")
        first.get_by_role("button", name="Hide").click()
        expect(desk.locator("article.comment.is-hidden").first).to_contain_text("Off topic")
    finally:
        editor_context.close()

    page.reload()
    expect(page.get_by_text("The envoy's")).to_have_count(0)


def test_a_multiple_choice_forecast_on_the_question_page_updates_the_options_table(page: Page, sign_in, reader):
    question = multiple_choice_question(labels=("Oman", "Qatar", "Egypt"))
    sign_in(reader)
    page.goto(question.get_absolute_url())
    expect(page.locator("[data-option-community='0']")).to_have_text("–")
    page.get_by_label("Oman").fill("60")
    page.get_by_label("Qatar").fill("25")
    page.get_by_label("Egypt").fill("15")
    page.get_by_role("button", name="Forecast").click()
    expect(page.locator("[data-forecast-saved]")).to_be_visible()
    expect(page.locator("[data-option-community='0']")).to_have_text("60%")  # swapped in, no reload
    expect(page.locator("[data-community-options] th", has_text="You")).to_be_visible()
