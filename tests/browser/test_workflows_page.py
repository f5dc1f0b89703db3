"""The workflow pages in a real browser, over a real server and its worker: the list, a
diamond's graph whose statuses change on screen as its jobs run, a node leading to its job and
back, cancelling from the page, and a wide fan-out drawn with a cap and a paged table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from jobhandler import Settings
from jobhandler.model.workflows import WorkflowJobRequest, WorkflowRequest, WorkflowView
from tests.apps.gateapp import app as gateapp
from tests.browser.conftest import start_server
from tests.conftest import Server

pytestmark = pytest.mark.browser


@dataclass
class Served:
    server: Server
    gates: Path  # a job of ``gated`` finishes once the file its payload names is here
    database_url: str

    def submit(self, name: str, graph: dict[str, list[str]], gate: str) -> WorkflowView:
        """The workflow through the service, on the server's database (as any producer)."""
        jobs = [
            WorkflowJobRequest(key=key, task="gated", payload=gate, after=after)
            for key, after in graph.items()
        ]
        with gateapp.connected_sync(Settings(database_url=self.database_url)):
            submitted = gateapp.service.workflows.submit(WorkflowRequest(name=name, jobs=jobs))
            return gateapp.run_sync(submitted)

    def cancel(self, workflow_id: str) -> None:
        with gateapp.connected_sync(Settings(database_url=self.database_url)):
            gateapp.run_sync(gateapp.service.workflows.cancel(workflow_id))


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    where = tmp_path_factory.mktemp("workflows")
    gates = where / "gates"
    gates.mkdir()
    server = start_server(where, JOBHANDLER_APP="gateapp:app", GATEAPP_DIR=str(gates))
    try:
        yield Served(server, gates, f"sqlite:///{where / 'jobs.db'}")
    finally:
        server.stop(timeout=10)


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    """A fresh browser context whose console must stay free of errors."""
    context = browser.new_context(base_url=f"{served.server.url}/ui/")
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


def node(page: Page, key: str) -> str:
    return f"svg.graph .node[data-key='{key}']"


def test_a_diamond_runs_on_screen_and_its_nodes_lead_to_their_jobs(
    page: Page, served: Served
) -> None:
    flow = served.submit("diamond", DIAMOND, gate="diamond")
    ids = {job.key: job.id for job in flow.jobs}
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto("")
    page.get_by_role("link", name="Workflows", exact=True).click()
    row = page.locator(f"tr[data-workflow='{flow.id}']")
    expect(row).to_contain_text("running")
    expect(row.locator(".count[data-status='waiting']")).to_have_text("3 waiting")
    row.get_by_role("link", name="diamond").click()
    page.wait_for_url(re.compile(f"/ui/workflows/{flow.id}$"))

    expect(page.locator("svg.graph .node")).to_have_count(4)
    expect(page.locator("svg.graph .edges path")).to_have_count(4)
    expect(page.locator(node(page, "a"))).to_have_attribute("data-status", "processing")
    for key in "bcd":
        expect(page.locator(node(page, key))).to_have_attribute("data-status", "waiting")
        expect(page.locator(node(page, key))).to_contain_text("waiting")
    # Drawn by depth: a, then b and c in one column, then d.
    xs = {k: page.locator(f"{node(page, k)} rect").get_attribute("x") for k in "abcd"}
    assert xs["b"] == xs["c"] and len({xs["a"], xs["b"], xs["d"]}) == 3, xs

    page.evaluate("window.notReloaded = true")  # a reload or navigation would drop it
    (served.gates / "diamond").touch()
    expect(page.locator(node(page, "d"))).to_have_attribute("data-status", "completed")
    expect(page.locator("#workflow-status")).to_have_text("completed")
    expect(page.locator("table.workflow-jobs")).not_to_contain_text("waiting")
    assert page.evaluate("window.notReloaded") is True
    assert any(url.endswith(f"/ui/workflows/{flow.id}/events") for url in requests), requests

    page.locator(node(page, "d")).click()
    page.wait_for_url(re.compile(f"/ui/jobs/{ids['d']}$"))
    expect(page.locator("#job-key")).to_have_text("d")
    expect(page.locator(f"#job-after a[href$='/jobs/{ids['b']}']")).to_have_count(1)
    expect(page.locator(f"#job-after a[href$='/jobs/{ids['c']}']")).to_have_count(1)
    page.locator("#job-workflow").click()
    page.wait_for_url(re.compile(f"/ui/workflows/{flow.id}$"))


def test_cancel_from_the_workflow_page(page: Page, served: Served) -> None:
    flow = served.submit("doomed", DIAMOND, gate="never")
    page.goto(f"workflows/{flow.id}")
    expect(page.locator(node(page, "a"))).to_have_attribute("data-status", "processing")
    page.get_by_role("button", name="Cancel workflow").click()  # confirmed by the handler
    expect(page.locator("#workflow-status")).to_have_text("cancelled")
    for key in "abcd":  # a was running: its worker ends it, and the page follows
        expect(page.locator(node(page, key))).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_role("button", name="Cancel workflow")).to_have_count(0)
    page.goto(f"jobs/{flow.jobs[-1].id}")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    page.goto("workflows?status=cancelled")
    expect(page.locator(f"tr[data-workflow='{flow.id}']")).to_have_count(1)
    page.goto("workflows?status=completed")
    expect(page.locator(f"tr[data-workflow='{flow.id}']")).to_have_count(0)


def test_a_wide_fan_out_is_drawn_with_a_cap_and_its_jobs_are_paged(
    page: Page, served: Served
) -> None:
    graph = {"split": [], **{f"part-{i:03}": ["split"] for i in range(120)}}
    graph["merge"] = [k for k in graph if k != "split"]
    flow = served.submit("wide", graph, gate="wide")
    try:
        page.goto(f"workflows/{flow.id}")
        expect(page.locator("svg.graph .node[data-job]")).to_have_count(27)  # 1 + 25 + 1
        more = page.locator("svg.graph .node[data-status='more']")
        expect(more).to_contain_text("+ 95 more")
        expect(page.get_by_text("95 of 122 jobs are not drawn")).to_be_visible()
        rows = page.locator("table.workflow-jobs tbody tr")
        expect(rows).to_have_count(50)
        first = {rows.nth(i).get_attribute("data-key") for i in range(50)}
        page.get_by_role("link", name=re.compile("^Next")).click()
        expect(page.locator(".pager")).to_contain_text(re.compile(r"jobs 51\W100 of 122"))
        expect(rows).to_have_count(50)
        second = {rows.nth(i).get_attribute("data-key") for i in range(50)}
        assert len(second) == 50 and not first & second
        page.goto("jobs")
        options = page.locator("select[name='status'] option").all_text_contents()
        assert "waiting" in options, options
        page.goto("jobs?status=waiting")
        expect(page.locator("table.jobs tbody tr").first).to_contain_text("waiting")
    finally:
        served.cancel(flow.id)
