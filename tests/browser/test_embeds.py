"""A question inside another site's page, in a real browser: the embed framed by a page of another
origin (a small http.server on another loopback address), its number live and equal to the question
page's, the question page itself refusing to be framed, and an editor copying the embed code and
pasting it into a partner's page. Screenshots of the embed (light and dark) and of the card."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from forecasting import services
from forecasting.models import Question
from forecasting.services.embeds import embed_size
from forecasting.templatetags.forecast_format import percent
from tests.factories import QuestionFactory, UserFactory, editor_user, multiple_choice_question

from .conftest import SCREENSHOTS, assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

PARTNER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Partner newsroom: the talks</title></head>
<body><main><h1>The talks, as our partner reports them</h1>
<p>Diplomats met again this week. What do readers expect?</p>
{embed}
<p>More reporting below the forecast.</p></main></body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        """Keep the partner site's request log out of the test output."""


@pytest.fixture
def partner_site(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """Another origin (127.0.0.1 on its own port; the live server is localhost): ``publish(name,
    embed_html)`` serves a partner's article with ``embed_html`` in it and returns its address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def publish(name: str, embed_html: str) -> str:
        (tmp_path / name).write_text(PARTNER_PAGE.format(embed=embed_html), encoding="utf-8")
        return f"http://127.0.0.1:{server.server_port}/{name}"

    yield publish
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def site_url(settings, live_server):
    """Embed code and oEmbed are absolute on SITE_URL: here, the live server."""
    settings.SITE_URL = live_server.url


@pytest.fixture
def question(transactional_db) -> Question:
    question = QuestionFactory(title="Will a ceasefire be announced by March?")
    for value in ("0.30", "0.42", "0.37", "0.45", "0.40"):
        services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal(value))
    return question


def community_yes(question: Question) -> float:
    return services.community_forecast(question=question).probability_yes


def iframe(url: str, title: str = "Forecast", width: int = 480, height: int = 250) -> str:
    return f'<iframe src="{url}" width="{width}" height="{height}" title="{title}"></iframe>'


def test_a_partner_page_frames_the_embed_with_the_question_pages_number(
    page: Page, question, live_server, partner_site
):
    page.goto(question.get_absolute_url())
    number_on_our_page = page.locator("[data-community-value]").first.inner_text()

    embed = f"{live_server.url}{reverse('question_embed', kwargs={'pk': question.pk})}"
    page.goto(partner_site("article.html", iframe(embed, title=f"Forecast: {question.title}")))
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name=question.title)).to_be_visible()
    expect(frame.locator("[data-community-value]")).to_have_text(number_on_our_page)
    expect(frame.locator("[data-forecasters]")).to_have_text("5 forecasters")
    expect(frame.locator("[data-sparkline]")).to_be_visible()
    link = frame.get_by_role("link", name="Forecast on Newsroom Forecasts")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")
    assert_accessible(page)  # the partner's page and, through axe's frame support, the embed in it

    with page.context.expect_page() as opened:
        link.click()
    question_page = opened.value
    question_page.wait_for_load_state()
    assert question_page.url == f"{live_server.url}{question.get_absolute_url()}"
    question_page.close()


def test_the_question_page_itself_refuses_to_be_framed(page: Page, question, live_server, partner_site, problems):
    page.goto(partner_site("framing.html", iframe(f"{live_server.url}{question.get_absolute_url()}")))
    page.wait_for_timeout(500)
    framed = page.frames[1]
    assert framed.url.startswith("chrome-error://") or not framed.content().count(question.title)
    assert any("frame-ancestors" in problem or "X-Frame-Options" in problem for problem in problems), problems
    problems.expect("frame-ancestors")  # Chromium's refusal is the expected answer
    problems.expect("X-Frame-Options")


def test_an_editor_copies_the_embed_code_and_it_renders_in_a_partner_page(
    context: BrowserContext, page: Page, question, sign_in, live_server, partner_site
):
    sign_in(editor_user(username="erin"))
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(question.get_absolute_url())
    panel = page.locator("[data-embed-code]")
    code = panel.get_by_label("Embed code")
    expect(code).to_have_attribute("readonly", "")
    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_role("status")).to_have_text("Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == code.input_value()
    assert copied.startswith(f'<iframe src="{live_server.url}/embed/questions/{question.pk}/"')
    assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "embed-code-panel.png"))

    page.goto(partner_site("pasted.html", copied))
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name=question.title)).to_be_visible()
    expect(frame.locator("[data-community-value]")).to_have_text(f"{percent(community_yes(question))}%")
    assert_accessible(page)


def test_the_copy_button_falls_back_to_selecting_the_code(context: BrowserContext, page: Page, question, sign_in):
    """Without the async clipboard (an older browser, a denied permission) the code is selected and copied."""
    sign_in(editor_user(username="erin"))
    context.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined});")
    page.goto(question.get_absolute_url())
    panel = page.locator("[data-embed-code]")
    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_role("status")).to_contain_text("Cop")  # "Copied", or how to copy the selection
    selected = page.evaluate(
        "() => { const t = document.querySelector('[data-embed-code-text]');"
        " return t.value.substring(t.selectionStart, t.selectionEnd); }"
    )
    assert selected.startswith("<iframe ")


def test_the_embed_refreshes_its_number_every_minute(page: Page, question):
    page.clock.install()
    page.goto(reverse("question_embed", kwargs={"pk": question.pk}))
    before = page.locator("[data-community-value]").inner_text()
    for _ in range(3):
        services.prediction_create(question=question, forecaster=UserFactory(), probability=Decimal("0.95"))
    after = f"{percent(community_yes(question))}%"
    assert after != before
    page.clock.run_for(61_000)
    expect(page.locator("[data-community-value]")).to_have_text(after)
    expect(page.locator("[data-forecasters]")).to_have_text("8 forecasters")


def with_history(question: Question, forecasts: list) -> Question:
    """Forecasts spread over the question's last ten days, so the sparklines have a shape."""
    start = timezone.now() - dt.timedelta(days=10)
    for i, value in enumerate(forecasts):
        values = {"probability": Decimal(value)} if question.is_binary else {"option_probabilities": value}
        services.prediction_create(
            question=question, forecaster=UserFactory(), now=start + dt.timedelta(hours=8 * i), **values
        )
    return question


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots_of_the_embed_and_the_card(page: Page, live_server, partner_site, theme, transactional_db):
    opened = timezone.now() - dt.timedelta(days=11)
    binary = with_history(
        QuestionFactory(
            title="Will the two delegations sign a written ceasefire framework before the end of March?",
            opens_at=opened,
        ),
        ["0.30", "0.42", "0.37", "0.55", "0.48", "0.62", "0.58", "0.35", "0.41", "0.44", "0.39", "0.52"],
    )
    multiple = with_history(
        multiple_choice_question(
            title="Who will host the next round of talks?", labels=("Oman", "Qatar", "Egypt"), opens_at=opened
        ),
        [
            [Decimal(v) for v in vector]
            for vector in (["0.5", "0.3", "0.2"], ["0.6", "0.3", "0.1"], ["0.3", "0.5", "0.2"], ["0.4", "0.4", "0.2"])
        ],
    )
    query = "?theme=dark" if theme == "dark" else ""
    shown = [(q, width) for width in (480, 320) for q in (binary, multiple)]  # a desktop column, a phone's
    frames = "".join(
        iframe(
            f"{live_server.url}{reverse('question_embed', kwargs={'pk': q.pk})}{query}",
            title=q.title,
            width=width,
            height=embed_size(q, width)[1],
        )
        for q, width in shown
    )
    page.goto(partner_site(f"shots-{theme}.html", frames))
    for i, (q, width) in enumerate(shown):
        frame = page.frame_locator("iframe").nth(i)
        expect(frame.get_by_role("heading", name=q.title)).to_be_visible()
        # everything fits the height the embed code gives: no scrolling inside the frame
        assert frame.locator("html").evaluate("e => e.scrollHeight <= e.clientHeight"), (q.title, width)
    assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for i, (q, width) in enumerate(shown):
        name = "binary" if q.is_binary else "multiple-choice"
        page.locator("iframe").nth(i).screenshot(path=str(SCREENSHOTS / f"embed-{name}-{theme}-{width}.png"))
    if theme == "light":
        for q, name in ((binary, "binary"), (multiple, "multiple-choice")):
            card = page.request.get(f"{live_server.url}{reverse('question_card_image', kwargs={'pk': q.pk})}")
            assert card.ok and card.headers["content-type"] == "image/png"
            (SCREENSHOTS / f"card-{name}.png").write_bytes(card.body())
