"""The dashboard in a real browser: every page loads clean, a job submitted through the form
runs and its status changes on screen without a reload, cancel and retry work from the job
page, and so does pausing a queue."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser

PAGES = ["", "jobs", "queues", "workers", "tasks", "tasks/reverse", "schedules", "login"]


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A fresh browser context (no cookie) whose console must stay free of errors."""
    context = browser.new_context(base_url=f"{server.url}/ui/")
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text} at {message.location.get('url')}")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()
    assert not problems, problems


def submit_through_the_form(page: Page, text: str, delay: str = "") -> str:
    page.goto("tasks/reverse")
    page.get_by_label("payload").fill(text)
    if delay:
        page.get_by_label("Delay in seconds").fill(delay)
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_every_page_loads_without_a_console_error(page: Page, server: Server) -> None:
    job = httpx.post(f"{server.url}/jobs", json={"payload": "abc"}, timeout=10).json()
    for path in [*PAGES, f"jobs/{job['id']}"]:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("h1")).to_be_visible()
    page.goto("")
    expect(page.locator("h1")).to_have_text("Overview")
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator("table.jobs")).to_contain_text("reverse")


def test_a_submitted_job_runs_and_its_status_changes_without_a_reload(page: Page) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    job_id = submit_through_the_form(page, "hello")
    status = page.locator("#job-status")
    expect(status).to_have_text(re.compile("queued|processing"))
    page.evaluate("window.notReloaded = true")  # a reload or navigation would drop it
    expect(status).to_have_text("completed", timeout=15_000)
    expect(page.locator("#job-result")).to_have_text('"olleh"')
    assert page.evaluate("window.notReloaded") is True
    assert page.url.endswith(job_id)
    # Pushed by the job's event stream, not found by polling: a fetch per change, no more.
    assert any(url.endswith(f"/ui/jobs/{job_id}/events") for url in requests), requests
    assert sum(url.endswith(f"/ui/jobs/{job_id}") for url in requests) <= 5, requests


def test_cancel_and_retry_from_the_job_page(page: Page) -> None:
    submit_through_the_form(page, "later", delay="3600")
    status = page.locator("#job-status")
    expect(status).to_have_text("scheduled")
    page.get_by_role("button", name="Cancel").click()
    expect(status).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    page.get_by_role("button", name="Retry").click()
    expect(status).to_have_text(re.compile("queued|processing|completed"))
    expect(status).to_have_text("completed", timeout=15_000)
    page.get_by_role("button", name="Delete").click()  # confirmed by the dialog handler
    page.wait_for_url(re.compile(r"/ui/jobs$"))


def test_pausing_a_queue(page: Page, server: Server) -> None:
    httpx.post(f"{server.url}/jobs", json={"payload": "q"}, timeout=10)
    page.goto("queues")
    row = page.locator("tr[data-queue='default']")
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".queue-state")).to_contain_text("paused")
    paused = httpx.get(f"{server.url}/queues", timeout=10).json()
    assert next(q for q in paused if q["queue"] == "default")["paused"] is True
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".queue-state")).to_contain_text("active")


def test_readable_on_a_phone_and_in_dark_mode(browser: Browser, server: Server) -> None:
    context = browser.new_context(
        base_url=f"{server.url}/ui/",
        viewport={"width": 375, "height": 740},
        color_scheme="dark",
        is_mobile=True,
    )
    try:
        phone = context.new_page()
        phone.goto("jobs")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, "the page scrolls sideways on a phone"
        background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(18, 20, 24)", background
    finally:
        context.close()
