"""Browser tests: Debian's Chromium driven by Playwright against the live test server.

Each test gets a fresh browser context (cookies, storage) at desktop width; ``at_phone_width``
switches to 390 px. axe-core (pinned, vendored in tests/browser_vendor) is injected into every page
through an init script (DevTools, not a <script> tag, so the site's CSP does not have to allow it),
and every console error or uncaught exception on any page fails the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[1] / "browser_vendor" / "axe-core-4.14.1" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(settings.BASE_DIR) / "var" / "screenshots"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for this package's tests, closed after the last of them. While Playwright's sync
    API is open it keeps an event loop in the test's thread, and Django refuses ORM calls from a thread
    with a running loop unless told it is safe (it is: the loop only waits); the permission ends with
    the package, so it never reaches other tests or their subprocesses (``check --deploy`` refuses it)."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _chromium()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        yield browser
        browser.close()


class Problems(list):
    """Console errors and uncaught exceptions seen by a context's pages."""

    def expect(self, text: str) -> None:
        """Forget the errors containing ``text`` seen so far (a test that provokes one on purpose,
        e.g. Chromium logging the 400 answer of a refused form)."""
        self[:] = [problem for problem in self if text not in problem]


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def context(browser: Browser, live_server, problems: Problems, transactional_db) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url, locale="en-GB", timezone_id="UTC")
    context.add_init_script(path=str(AXE))
    context.set_default_timeout(10_000)

    def watch(page: Page) -> None:
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    context.on("page", watch)
    yield context
    context.close()
    assert not problems, f"console errors: {problems}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def sign_in(context: BrowserContext, live_server):
    """``sign_in(user)`` signs ``user`` in for the whole context (a session cookie from Django's test client)."""

    def sign_in(user) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])

    return sign_in


def wait_until(page: Page, function: str, timeout: float = 10.0) -> None:
    """Wait until the JavaScript ``function`` returns a truthy value. (Playwright's wait_for_function
    evaluates a string, which the site's CSP forbids; evaluate() calls a function, which it allows.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {function}")
        page.wait_for_timeout(100)


def at_phone_width(page: Page) -> None:
    page.set_viewport_size(PHONE)


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.x A/AA violations of the given impacts, one line each."""
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
            resultTypes: ["violations"],
        })"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, "\n".join(violations)


def assert_no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {page.viewport_size['width']} px"


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in var/screenshots (SCREENSHOT_DIR), named by page and width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
