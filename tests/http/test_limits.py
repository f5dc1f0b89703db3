"""Bounded resources: list pages bounded in bytes as well as rows, and `?wait=` waiters that
cost the store a constant number of queries however many there are."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import psycopg

from jobhandler.model.jobs import JobStatus, NewJob, new_job_id
from jobhandler.model.records import JobFilter
from jobhandler.store import Store
from tests.conftest import PG_ADMIN_URL, Process, Server, test_env

MiB = 1024 * 1024
GO_FIELDS = {"id", "payload", "status", "result", "error", "created_at", "updated_at"}


def start(spawn: Callable[..., Process], args: list[str], env: dict[str, str]) -> Server:
    proc = spawn(args, env, server=True)
    assert isinstance(proc, Server)
    return proc.wait_ready()


def rss_bytes(pid: int) -> int:
    """The resident memory of a process, from /proc/PID/status (VmRSS, in kB)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def next_link(response: httpx.Response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    assert link.endswith('rel="next"'), link
    return link.split(";")[0].strip("<>")


def read_all_pages(http: httpx.Client, first: httpx.Response, max_bytes: int) -> list[str]:
    """Follow the next links from ``first``; every page within the byte budget, with the Go
    service's fields in every item."""
    page, seen = first, []
    while True:
        assert page.status_code == 200, page.text
        assert len(page.content) <= max_bytes
        items = page.json()
        assert items, "a page always holds at least one job"
        for item in items:
            assert item.keys() >= GO_FIELDS
        seen += [item["id"] for item in items]
        url = next_link(page)
        if url is None:
            return seen
        page = http.get(url)


def test_list_pages_are_bounded_in_bytes_and_memory(
    database_url: str, spawn: Callable[..., Process]
) -> None:
    server = start(spawn, ["serve"], test_env(database_url))
    size = 1_000_000  # about 1 MiB each, just under the payload limit
    with httpx.Client(base_url=server.url, timeout=60) as http:
        ids = []
        for i in range(100):
            # Scheduled an hour ahead, so no worker runs them.
            body = {"payload": f"{i:04d}".ljust(size, "x"), "delay": 3600}
            response = http.post("/jobs", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        before = rss_bytes(server.pid)
        first = http.get("/jobs", params={"limit": 100})
        assert first.status_code == 200
        assert 1 <= len(first.json()) < 100 and next_link(first) is not None
        assert all(len(item["payload"]) == size for item in first.json())
        seen = read_all_pages(http, first, 4 * MiB)
        assert seen == ids[::-1]  # every job once, newest first
        grown = rss_bytes(server.pid) - before
    # Unbounded, one page of these was over 100 MB and the server grew by 500 MB.
    assert grown < 150 * MiB, f"the server grew by {grown / MiB:.0f} MiB"


def test_page_byte_budget_is_a_setting_and_a_page_holds_at_least_one_job(
    database_url: str, spawn: Callable[..., Process]
) -> None:
    server = start(spawn, ["serve", "--max-page-bytes", "3000"], test_env(database_url))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        small = [http.post("/jobs", json={"payload": "s", "delay": 3600}).json() for _ in range(4)]
        big = http.post("/jobs", json={"payload": "b" * 5000, "delay": 3600}).json()
        first = http.get("/jobs", params={"limit": 10})
        # The big job alone is over the budget: it still gets a page of its own.
        assert [j["id"] for j in first.json()] == [big["id"]]
        second = http.get(next_link(first) or "")
        assert [j["id"] for j in second.json()] == [small[3]["id"], small[2]["id"]]
        seen = read_all_pages(http, first, 3000 + 5000)
    assert seen == [big["id"], *(j["id"] for j in small[::-1])]


async def test_store_pages_by_bytes_and_reads_statuses_in_one_call(store: Store) -> None:
    """The store contract behind both: on SQLite and PostgreSQL alike."""
    now = time.time()
    sizes = [10, 3000, 10, 10]  # payload lengths, oldest first
    jobs = [NewJob(new_job_id(), "t", "q", "x" * n, 0, 3, None, now + 3600) for n in sizes]
    await store.insert_jobs(jobs, now)
    # Budget 2500: the 3000-byte job gets a page of its own; small ones share one.
    seen, cursor, pages = [], None, []
    while True:
        page = await store.list_jobs(JobFilter(), 10, cursor, max_bytes=2500)
        pages.append([len(j.payload) for j in page.jobs])
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == [[10, 10], [3000], [10]]
    assert seen == [j.id for j in reversed(jobs)]
    oldest = await store.list_jobs(JobFilter(), 10, None, oldest_first=True, max_bytes=2500)
    assert [len(j.payload) for j in oldest.jobs] == [10]
    # Without a budget, rows only.
    assert len((await store.list_jobs(JobFilter(), 10, None)).jobs) == 4

    await store.request_cancel(jobs[0].id, now)
    statuses = await store.job_statuses([jobs[0].id, jobs[1].id, "no-such-job"])
    assert statuses == {jobs[0].id: JobStatus.CANCELLED, jobs[1].id: JobStatus.SCHEDULED}
    assert await store.job_statuses([]) == {}


# -- waiters -----------------------------------------------------------------------------------


def commits(database_url: str) -> int:
    """Transactions committed in the test database so far (PostgreSQL's statistics)."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def commit_rate(database_url: str, seconds: float) -> float:
    """Transactions per second in the test database, measured over ``seconds``."""
    start, began = await asyncio.to_thread(commits, database_url), time.monotonic()
    await asyncio.sleep(seconds)  # the measuring window, not a wait for anything
    end = await asyncio.to_thread(commits, database_url)
    return (end - start) / (time.monotonic() - began)


def quiet(database_url: str, most: int = 50) -> bool:
    """Fewer than ``most`` transactions in the next second (a burst of reads is over)."""
    start = commits(database_url)
    time.sleep(1.0)  # the measuring window
    return commits(database_url) - start < most


async def wait_async(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.2)


WINDOW = 4.0  # seconds each transaction rate is measured over


async def raw_get(server: Server, path: str) -> tuple[int, dict[str, Any]]:
    """One GET on a connection of its own. Plain asyncio streams, not httpx: 500 requests in
    one httpx pool cost the test seconds of its own CPU, which would be counted as latency."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    data = await reader.read()  # to the end: the server closes the connection
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_500_waiters_cost_the_store_what_one_costs(
    pg_database_url: str, spawn: Callable[..., Process]
) -> None:
    url = pg_database_url
    server = start(spawn, ["serve"], test_env(url))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        batch = [{"payload": f"p{i}", "delay": 3600} for i in range(500)]
        response = await http.post("/jobs/batch", json={"jobs": batch})
    ids = [job["id"] for job in response.json()["jobs"]]
    returned: dict[str, float] = {}

    async def wait(job_id: str) -> tuple[int, dict[str, Any]]:
        answer = await raw_get(server, f"/jobs/{job_id}?wait=60")
        returned[job_id] = time.monotonic()
        return answer

    one = asyncio.create_task(wait(ids[0]))
    rate_one = await commit_rate(url, WINDOW)

    before = await asyncio.to_thread(commits, url)
    waiters = [one, *(asyncio.create_task(wait(job_id)) for job_id in ids[1:])]
    # Each waiter reads its job once when it arrives: once those reads are counted and over,
    # what remains is the steady cost of waiting.
    await wait_async(lambda: commits(url) >= before + 499, timeout=60)
    await wait_async(lambda: quiet(url), timeout=60)
    rate_many = await commit_rate(url, WINDOW)
    assert not any(w.done() for w in waiters), "a waiter returned before its job finished"
    # Each waiter polling for itself cost about 4 transactions a second per waiter: 2,000/s for
    # these 500. Shared, the cost stays a small constant; the margin absorbs a loaded machine
    # (stragglers of the first reads, the worker's own polls).
    assert rate_many < rate_one + 50, (rate_one, rate_many)

    # Finishing the jobs wakes their waiters at once.
    cancelled: dict[str, float] = {}

    def cancel_all() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for job_id in ids:
                reply = client.post(f"/jobs/{job_id}/cancel")
                assert reply.status_code == 200, reply.text
                cancelled[job_id] = time.monotonic()

    await asyncio.to_thread(cancel_all)
    answers = await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
    for status, job in answers:
        assert status == 200 and job["status"] == "cancelled"
    slowest = max(returned[j] - cancelled[j] for j in ids)
    # Woken by the cancel itself, not by the 60 s wait running out (nor a slow poll).
    assert slowest < 5.0, f"a waiter returned {slowest:.2f}s after its job was cancelled"


async def test_waiters_see_jobs_finished_by_another_process(
    database_url: str, spawn: Callable[..., Process]
) -> None:
    env = test_env(database_url)
    server = start(spawn, ["serve", "--no-worker"], env)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        batch = [{"payload": f"p{i}", "delay": 1} for i in range(20)]
        response = await http.post("/jobs/batch", json={"jobs": batch})
        jobs = response.json()["jobs"]

        async def wait(job: dict[str, Any]) -> tuple[dict[str, Any], float]:
            answer = await http.get(f"/jobs/{job['id']}", params={"wait": 30})
            return answer.json(), time.time()

        waiters = [asyncio.create_task(wait(job)) for job in jobs]
        # No worker in the server's process: only the shared store read can see them finish.
        worker = spawn(["worker"], env)
        answers = await asyncio.wait_for(asyncio.gather(*waiters), timeout=40)
    assert worker.popen.poll() is None
    for job, _ in answers:
        assert job["status"] == "completed" and job["result"] == job["payload"][::-1]
    # Each returned within the server's read interval (a quarter second) and a round trip.
    lags = [seen_at - epoch(job["finished_at"]) for job, seen_at in answers]
    assert max(lags) < 2.0, lags


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
