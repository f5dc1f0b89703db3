"""Signing in to the dashboard of a server whose store holds tokens, in a real browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from jobhandler import App, Settings
from tests.browser.conftest import start_server
from tests.conftest import Server

pytestmark = pytest.mark.browser


async def make_tokens(database_url: str) -> dict[str, str]:
    app = App()
    async with app.connected(Settings(database_url=database_url)):
        return {scope: (await app.service.tokens.create(scope))[1] for scope in ("read", "admin")}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    where = tmp_path_factory.mktemp("login")
    with ThreadPoolExecutor(1) as thread:  # its own event loop: this may run inside one
        made = thread.submit(asyncio.run, make_tokens(f"sqlite:///{where / 'jobs.db'}")).result()
    running = start_server(where)
    try:
        yield running, made
    finally:
        running.stop(timeout=10)


@pytest.fixture
def page(browser: Browser, tokens: tuple[Server, dict[str, str]]) -> Iterator[Page]:
    context = browser.new_context(base_url=f"{tokens[0].url}/ui/")
    yield context.new_page()
    context.close()


def sign_in(page: Page, token: str) -> None:
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_keeps_the_token_out_of_reach_of_scripts(
    page: Page, tokens: tuple[Server, dict[str, str]]
) -> None:
    server, made = tokens
    page.goto("queues")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    sign_in(page, "jh_not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("that token is not valid")
    sign_in(page, made["admin"])
    expect(page).to_have_url(re.compile(r"/ui/queues$"))  # back where it was asked for
    expect(page.locator("h1")).to_have_text("Queues")
    assert "jobhandler_session" not in page.evaluate("document.cookie")  # HttpOnly
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui/"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto("jobs")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    assert httpx.get(f"{server.url}/jobs", timeout=10).status_code == 401


def test_a_read_token_sees_but_cannot_act(
    page: Page, tokens: tuple[Server, dict[str, str]]
) -> None:
    server, made = tokens
    headers = {"Authorization": f"Bearer {made['admin']}"}
    job = httpx.post(
        f"{server.url}/jobs", json={"payload": "x", "delay": 3600}, headers=headers, timeout=10
    ).json()
    page.goto(f"jobs/{job['id']}")
    sign_in(page, made["read"])
    expect(page.locator("#job-status")).to_have_text("scheduled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    page.goto("queues")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
