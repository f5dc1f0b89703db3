"""Workers whose clocks are wrong, on PostgreSQL: every host judges time on the database's.

Each worker runs under libfaketime (its whole process, `time.time` included, 30 s off); the
API server's clock and the database's are right. A worker 30 s ahead must not start a job due in
10 s at once, and one 30 s behind must not leave a due job waiting half a minute. (SQLite has
no such case: every process of a store shares its one host's clock.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Process, Server, test_env, wait_until
from tests.faketime import LIBFAKETIME, WITHOUT_LIBFAKETIME, skewed

pytestmark = pytest.mark.skipif(LIBFAKETIME is None, reason=WITHOUT_LIBFAKETIME)


def one_worker_runs(
    spawn: Callable[..., Process], env: dict[str, str], http: httpx.Client
) -> Process:
    worker = spawn(["worker"], env)
    wait_until(lambda: len(http.get("/workers").json()) == 1, timeout=20)
    return worker


def test_workers_with_clocks_30_s_off_start_jobs_on_the_databases_time(
    spawn: Callable[..., Process], pg_database_url: str
) -> None:
    env = test_env(pg_database_url, JOBHANDLER_DEMO_DELAY="0", JOBHANDLER_POLL_INTERVAL="0.2")
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready()
    with httpx.Client(base_url=api.url, timeout=30) as http:
        behind = one_worker_runs(spawn, skewed(env, -30), http)
        started = time.monotonic()
        due = http.post("/jobs", json={"payload": "now"}).json()
        done = http.get(f"/jobs/{due['id']}", params={"wait": 20}).json()
        assert done["status"] == "completed"
        assert time.monotonic() - started < 5  # not 30 s later, when its clock catches up
        # Its lease, written on the database's time, is not judged expired by the others.
        assert done["attempt"] == 1
        behind.stop()
        wait_until(lambda: http.get("/workers").json() == [], timeout=20)

        one_worker_runs(spawn, skewed(env, 30), http)
        started = time.monotonic()
        later = http.post("/jobs", json={"payload": "later", "delay": 6}).json()
        done = http.get(f"/jobs/{later['id']}", params={"wait": 25}).json()
        assert done["status"] == "completed"
        assert time.monotonic() - started > 5  # not at once: due in 6 s on the database's time
        assert done["started_at"] >= done["run_at"]
        assert os.environ.get("FAKETIME") is None  # the test process itself kept its clock
