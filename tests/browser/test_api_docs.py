"""The API's documentation pages (Swagger UI, ReDoc) render in a browser under the site's CSP."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


def _csp_errors(messages: list[str]) -> list[str]:
    # Redoc asks for Google's fonts and its own logo from a CDN; refusing those is the point.
    return [m for m in messages if "Content Security Policy" in m and "https://" not in m]


@pytest.mark.parametrize(("kind", "selector"), [("api docs", ".swagger-ui .info .title"), ("api redoc", "h1")])
def test_the_api_docs_render_in_a_browser_under_the_policy(
    browser: Browser, live_server, transactional_db, kind, selector
):
    path = {"api docs": reverse("api:docs"), "api redoc": reverse("api:redoc")}[kind]
    messages: list[str] = []
    context = browser.new_context()  # not the `context` fixture: Redoc's refused CDN requests are expected errors
    try:
        page = context.new_page()
        page.on("console", lambda message: messages.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: messages.append(f"uncaught: {error}"))
        page.goto(live_server.url + path)
        title = page.locator(selector).first
        title.wait_for(timeout=20_000)
        assert "Newsroom Forecasts API" in title.inner_text()
    finally:
        context.close()
    assert _csp_errors(messages) == [] and not [m for m in messages if m.startswith("uncaught")], messages
