"""Many API servers and workers on one PostgreSQL; and what happens when it goes away."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from tests.apps import crashapp
from tests.conftest import PG_ADMIN_URL, Process, Server, test_env, wait_until

FAST = {
    "JOBHANDLER_APP": "crashapp:app",
    "JOBHANDLER_LEASE": "5",
    "JOBHANDLER_HEARTBEAT_INTERVAL": "1",
    "JOBHANDLER_RESCUE_INTERVAL": "1",
    "JOBHANDLER_CONCURRENCY": "50",
}


def start_cluster(
    spawn: Callable[..., Process], url: str, ledger: Path, servers: int, workers: int
) -> list[Server]:
    crashapp.init_ledger(str(ledger))
    env = test_env(url, CRASHAPP_LEDGER=str(ledger), **FAST)
    apis = [spawn(["serve", "--no-worker"], env, server=True) for _ in range(servers)]
    for _ in range(workers):
        spawn(["worker"], env)
    ready = [api.wait_ready() for api in apis if isinstance(api, Server)]
    with httpx.Client(base_url=ready[0].url) as http:
        wait_until(lambda: len(http.get("/workers").json()) == workers)
    return ready


def finished(http: httpx.Client, total: int) -> bool:
    counts = {q["queue"]: q["counts"] for q in http.get("/queues").json()}
    return counts.get("default", {}).get("completed", 0) == total


def test_two_servers_three_workers_run_10000_jobs_exactly_once(
    spawn: Callable[..., Process], pg_database_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    apis = start_cluster(spawn, pg_database_url, ledger, servers=2, workers=3)
    clients = [httpx.Client(base_url=api.url, timeout=60) for api in apis]
    submitted: list[str] = []
    for batch in range(10):
        http = clients[batch % 2]  # alternate between the two API servers
        body = {"jobs": [{"task": "ledger", "payload": {}} for _ in range(1000)]}
        response = http.post("/jobs/batch", json=body)
        assert response.status_code == 201
        submitted += [j["id"] for j in response.json()["jobs"]]
    assert len(set(submitted)) == 10_000

    wait_until(lambda: finished(clients[0], 10_000), timeout=240, interval=0.5)
    runs = crashapp.read_runs(str(ledger))
    assert set(runs) == set(submitted)  # none lost
    assert [job for job, run in runs.items() if run.runs != 1] == []  # none twice
    assert len({pid for run in runs.values() for pid in run.pids}) == 3  # all three worked


def _set_connections(database_url: str, allowed: bool) -> None:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}")
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_database_outage_gives_prompt_503_and_loses_nothing(
    spawn: Callable[..., Process], pg_database_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    (api,) = start_cluster(spawn, pg_database_url, ledger, servers=1, workers=1)
    http = httpx.Client(base_url=api.url, timeout=60)
    accepted = [
        http.post("/jobs", json={"task": "ledger", "payload": {"hold": 0.5}}).json()["id"]
        for _ in range(20)
    ]
    try:
        _set_connections(pg_database_url, allowed=False)  # every connection cut, none allowed
        started = time.monotonic()
        down = http.post("/jobs", json={"task": "ledger", "payload": {}})
        assert down.status_code == 503, down.text
        assert "store unavailable" in down.json()["error"]
        assert time.monotonic() - started < 12  # a prompt answer, not a hang
        assert http.get("/readyz").status_code == 503
    finally:
        _set_connections(pg_database_url, allowed=True)

    wait_until(lambda: http.get("/readyz").status_code == 200, timeout=30)
    accepted += [
        http.post("/jobs", json={"task": "ledger", "payload": {}}).json()["id"] for _ in range(5)
    ]
    for job_id in accepted:  # the worker reconnected by itself and every accepted job ends
        job = http.get(f"/jobs/{job_id}", params={"wait": 60}).json()
        assert job["status"] == "completed", job
