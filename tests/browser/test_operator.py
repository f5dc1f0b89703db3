"""What an operator on call does, in a real browser against a real server: a bulk retry through
its confirmation, a queue's limit edited (a bad value answered next to its field), a job found
by the start of its id, its id copied with the copy button, absolute times on hover."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.conftest import Server

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A fresh context whose console must stay free of errors, but for the 422 a refused
    form is answered with (chromium logs it as a resource that failed to load)."""
    context = browser.new_context(base_url=f"{server.url}/ui/")
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "status of 422" not in message.text:
            problems.append(f"console: {message.text} at {message.location.get('url')}")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield opened
    context.close()
    assert not problems, problems


def later_jobs(server: Server, text: str, n: int) -> list[str]:
    body = {"payload": text, "delay": 3600}
    return [httpx.post(f"{server.url}/jobs", json=body, timeout=10).json()["id"] for _ in range(n)]


def status_of(server: Server, job_id: str) -> str:
    return str(httpx.get(f"{server.url}/jobs/{job_id}", timeout=10).json()["status"])


def test_bulk_retry_of_a_filter_after_its_confirmation(page: Page, server: Server) -> None:
    marker = f"bulk-{uuid.uuid4().hex[:8]}"
    ids = later_jobs(server, marker, 3)
    later_jobs(server, "left alone", 1)
    for job_id in ids:
        httpx.post(f"{server.url}/jobs/{job_id}/cancel", timeout=10).raise_for_status()
    page.goto("jobs")
    page.get_by_label("Status").select_option("cancelled")
    page.get_by_label("Payload or error holds").fill(marker)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.jobs tbody tr")).to_have_count(3)
    page.get_by_role("link", name="Retry…").click()
    expect(page.locator("#bulk-summary")).to_have_text(
        f"This will retry 3 cancelled jobs whose payload or error holds “{marker}”."
    )
    assert {status_of(server, i) for i in ids} == {"cancelled"}  # nothing happens before it
    page.get_by_role("button", name="Retry 3").click()
    expect(page.locator("#bulk-done")).to_contain_text("Retried 3 jobs")
    assert "cancelled" not in {status_of(server, i) for i in ids}


def test_editing_a_queue_limit(page: Page, server: Server) -> None:
    later_jobs(server, "q", 1)
    page.goto("queues")
    form = page.locator("#limits-default")
    form.get_by_label("concurrency of default").fill("lots")
    form.get_by_role("button", name="Save").click()
    form = page.locator("#limits-default")
    expect(form.get_by_role("alert")).to_contain_text("concurrency must be a whole number")
    form.get_by_label("concurrency of default").fill("4")
    form.get_by_label("rate limit of default").fill("50/s")
    form.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/ui/queues$"))
    expect(page.locator("#limits-default").get_by_label("concurrency of default")).to_have_value(
        "4"
    )
    queues = httpx.get(f"{server.url}/queues", timeout=10).json()
    default = next(q for q in queues if q["queue"] == "default")
    assert (default["concurrency"], default["rate_limit"]) == (4, "50/s")
    form = page.locator("#limits-default")
    form.get_by_label("concurrency of default").fill("")
    form.get_by_label("rate limit of default").fill("")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#limits-default").get_by_label("concurrency of default")).to_have_value("")


def test_finding_a_job_by_the_start_of_its_id(page: Page, server: Server) -> None:
    job_id, neighbour = later_jobs(server, "find me", 2)
    # The start both share (two jobs: never the one-match redirect); the newest lead the list.
    shared = job_id[
        : next(i for i, (a, b) in enumerate(zip(job_id, neighbour, strict=True)) if a != b)
    ]
    page.goto("jobs")
    page.get_by_label("Id starts with").fill(shared)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.jobs")).to_contain_text(job_id)
    expect(page.locator("table.jobs")).to_contain_text(neighbour)
    page.get_by_label("Id starts with").fill(job_id[:28].upper())  # only it: its page
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(f"/ui/jobs/{job_id}$"))
    expect(page.locator("#job-id")).to_have_text(job_id)


@pytest.fixture
def clipboard_page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=f"{server.url}/ui/")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    yield context.new_page()
    context.close()


def test_the_copy_button_copies_the_whole_id(clipboard_page: Page, server: Server) -> None:
    page = clipboard_page
    (job_id,) = later_jobs(server, "copy me", 1)
    page.goto("jobs")
    row = page.locator("table.jobs tr", has_text=job_id)
    expect(row.get_by_role("link", name=job_id)).to_be_visible()  # the whole id, not cut
    row.get_by_role("button", name=f"copy the id {job_id}").click()
    expect(row.locator("button.copy")).to_have_class(re.compile("copied"))
    assert page.evaluate("navigator.clipboard.readText()") == job_id
    page.goto(f"jobs/{job_id}")
    page.evaluate("navigator.clipboard.writeText('')")
    page.get_by_role("button", name="copy the id").click()
    assert page.evaluate("navigator.clipboard.readText()") == job_id


def test_relative_times_show_the_absolute_time_on_hover(page: Page, server: Server) -> None:
    later_jobs(server, "when", 1)
    page.goto("jobs")
    first = page.locator("table.jobs time").first
    first.hover()
    title = first.get_attribute("title")
    assert title and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", title), title
    assert first.get_attribute("datetime") == title
    assert re.fullmatch(r"\d+ (s|min|h|d) ago", first.inner_text())
