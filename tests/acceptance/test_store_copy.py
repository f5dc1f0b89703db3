"""`jobhandler store copy`: moving from the SQLite default to PostgreSQL keeps every job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from jobhandler.model.records import JobFilter
from jobhandler.settings import Settings
from jobhandler.store import open_store
from tests.acceptance.test_cli import cli
from tests.conftest import Process, Server, test_env


def all_jobs(url: str) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        store = open_store(Settings(database_url=url))
        try:
            page = await store.list_jobs(JobFilter(), 1000, None)
            return [
                {
                    "id": j.id,
                    "status": j.status.value,
                    "attempt": j.attempt,
                    "result": j.result,
                    "error": j.error,
                    "payload": j.payload,
                    "run_at": j.run_at,
                }
                for j in page.jobs
            ]
        finally:
            await store.close()

    return asyncio.run(read())


def test_copy_from_sqlite_to_postgres_keeps_history_and_queued_work(
    spawn: Callable[..., Process], sqlite_url: str, pg_database_url: str
) -> None:
    env = test_env(sqlite_url, JOBHANDLER_HEARTBEAT_INTERVAL="0.2")
    server = spawn(["serve"], env, server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        done = http.post("/jobs", json={"payload": "abc"}).json()
        failed = http.post("/jobs", json={"task": "fail", "payload": "nope"}).json()
        for job in (done, failed):
            http.get(f"/jobs/{job['id']}", params={"wait": 20})
        http.post("/jobs", json={"payload": "later", "delay": 3600})

        refused = cli("store", "copy", "--from", sqlite_url, "--to", pg_database_url)
        assert refused.returncode == 2 and "workers are live" in refused.stderr

    assert server.stop() == 0
    before = all_jobs(sqlite_url)
    assert {j["status"] for j in before} == {"completed", "failed", "scheduled"}

    copied = cli("store", "copy", "--from", sqlite_url, "--to", pg_database_url)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.startswith("copied 3 jobs")
    assert all_jobs(pg_database_url) == before

    again = cli("store", "copy", "--from", sqlite_url, "--to", pg_database_url)
    assert again.returncode == 2 and "already holds jobs" in again.stderr

    # A server on PostgreSQL now serves every job, the scheduled one still waiting its turn.
    pg = spawn(["serve"], test_env(pg_database_url), server=True)
    assert isinstance(pg, Server)
    pg.wait_ready()
    scheduled = next(j for j in before if j["status"] == "scheduled")
    with httpx.Client(base_url=pg.url, timeout=30) as http:
        moved = http.get(f"/jobs/{scheduled['id']}").json()
        assert moved["payload"] == "later" and moved["status"] == "scheduled"
        assert len(http.get("/jobs").json()) == 3
