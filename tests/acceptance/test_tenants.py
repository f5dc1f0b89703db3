"""Concurrency keys across real worker processes (issue #21): a per-key limit holds over every
worker, and a tenant's few jobs submitted behind another's long backlog start promptly (the
keys of a queue are claimed round-robin). Each run leaves its tenant, start and end in a ledger
(tests/apps/tenantapp.py) replayed here; both stores."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.acceptance.test_limits import counts
from tests.apps.flowapp import most_at_once
from tests.apps.tenantapp import runs
from tests.conftest import Process, Server, test_env, wait_until

FAST = {"JOBHANDLER_APP": "tenantapp:app", "JOBHANDLER_POLL_INTERVAL": "0.05"}


def cluster(
    spawn: Callable[..., Process], url: str, ledger: Path, workers: int, queues: str, **more: str
) -> httpx.Client:
    """An API server and ``workers`` worker processes, all registered."""
    ledger.mkdir()
    env = test_env(url, TENANTAPP_LEDGER=str(ledger), **FAST, **more)
    api = spawn(["serve", "--no-worker"], env, server=True)
    procs = [spawn(["worker", "--queues", queues], env) for _ in range(workers)]
    assert isinstance(api, Server)
    http = httpx.Client(base_url=api.wait_ready(timeout=60).url, timeout=30)
    wait_until(lambda: len(http.get("/workers").json()) == len(procs), timeout=30)
    return http


def submit(http: httpx.Client, task: str, tenant: str, seconds: float, n: int) -> None:
    job = {"task": task, "payload": {"tenant": tenant, "seconds": seconds}}
    for start in range(0, n, 1000):
        batch = [{**job, "concurrency_key": tenant}] * min(1000, n - start)
        response = http.post("/jobs/batch", json={"jobs": batch})
        assert response.status_code == 201, response.text


def test_a_key_limit_holds_over_three_workers(
    spawn: Callable[..., Process], database_url: str, tmp_path: Path
) -> None:
    http = cluster(spawn, database_url, tmp_path / "ledger", 3, "tenants")
    (queue,) = [q for q in http.get("/queues").json() if q["queue"] == "tenants"]
    assert queue["key_concurrency"] == 2 and queue["concurrency"] is None  # declared in code
    for tenant in ("acme", "globex", "initech"):
        submit(http, "limited", tenant, 0.1, 10)
    wait_until(lambda: counts(http, "tenants").get("completed") == 30, timeout=60)
    ledger = runs(str(tmp_path / "ledger"), "tenants")
    assert len(ledger) == 30
    for tenant in ("acme", "globex", "initech"):
        mine = [(s, e) for t, s, e in ledger if t == tenant]
        assert most_at_once(mine) == 2, tenant  # reached, never passed, over three processes


def test_a_small_tenant_starts_promptly_behind_a_long_backlog(
    spawn: Callable[..., Process], database_url: str, tmp_path: Path
) -> None:
    # Four slots a worker: what fairness orders is the claim, and a job claimed before the 20
    # came (at most 12 here) may still start after.
    ledger = tmp_path / "ledger"
    http = cluster(spawn, database_url, ledger, 3, "fair", JOBHANDLER_CONCURRENCY="4")
    submit(http, "shared", "big", 0.01, 2000)
    wait_until(lambda: counts(http, "fair").get("completed", 0) >= 50, timeout=60)
    submit(http, "shared", "small", 0.01, 20)
    submitted = time.time()
    wait_until(lambda: counts(http, "fair").get("completed") == 2020, timeout=120)
    ledger = runs(str(tmp_path / "ledger"), "fair")
    last_small = max(s for t, s, _ in ledger if t == "small")
    big_between = [s for t, s, _ in ledger if t == "big" and submitted <= s <= last_small]
    big_after = [s for t, s, _ in ledger if t == "big" and s > last_small]
    assert len(big_after) > 500  # the backlog was still long when the 20 came
    assert len(big_between) < 100, len(big_between)  # all 20 started before 100 more of big
