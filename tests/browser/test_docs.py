"""``/docs`` in a real browser: Swagger UI renders the API under the dashboard's strict
Content-Security-Policy, with nothing refused and nothing asked of another site."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_under_the_csp_from_the_servers_own_files(
    browser: Browser, server: Server
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    asked: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: asked.append(request.url))
    try:
        page.goto(f"{server.url}/docs")
        batch = page.locator(".opblock-summary-path", has_text="/jobs/batch")
        expect(batch).to_be_visible(timeout=30_000)  # a loaded machine renders slowly
        expect(page.locator(".info .title")).to_contain_text("Job Handler")
    finally:
        page.close()
    assert errors == []  # a CSP refusal is logged as a console error
    assert all(url.startswith(server.url) for url in asked), asked
