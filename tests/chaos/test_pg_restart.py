"""PostgreSQL restarted in the middle of a chaos run: everyone reconnects by themselves.

The test runs a PostgreSQL server of its own (tests/chaos/private_pg.py), so that restarting
it cuts no other test's connections. One API server and three workers serve it while the
clients submit, cancel, read and retry (tests/chaos/clients.py). While jobs run, the server is
restarted twice: ``pg_ctl restart -m fast`` (every session terminated, a clean shutdown), then
``-m immediate`` (the server killed, its WAL replayed on start, as after a crash). After each,
the API server must acknowledge submits again and every worker must start runs again, with
nothing restarted by the test; then the checker proves no acknowledged job was lost.

The crash may lose the last claims (workers commit them without waiting for the disk,
store/postgres/dialect.py): such a job is claimed again with the same attempt while the first
run goes on. The checker counts those as duplicates caused by the crash (``loses_commits``);
the first run's heartbeat finds its lease gone and drops its result, or, if it completes before
its next heartbeat, its result may be the one that lands: both runs are of that attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.acceptance.test_crash import Db
from tests.chaos.clients import Clients
from tests.chaos.history import Fault
from tests.chaos.outcome import RecordProperty, conclude
from tests.chaos.private_pg import PrivatePostgres
from tests.chaos.test_chaos import TIMING, Cluster
from tests.conftest import Process, Server, test_env, wait_until

Spawn = Callable[..., Process]


def restart(
    pg: PrivatePostgres, cluster: Cluster, clients: Clients, mode: str
) -> tuple[Fault, str]:
    """Restart the server while a worker runs a job; wait until everyone serves again."""
    cluster.busy(cluster.workers[0])
    began = time.time()
    down = pg.restart(mode)
    up = time.time()

    def api_serves() -> bool:
        return any(a.status == 201 and a.at - a.seconds > up for a in clients.answers)

    wait_until(api_serves, timeout=30)
    api = time.time() - up
    cluster.all_serving(since=up)
    workers = time.time() - up
    timing = f"{mode}: down {down:.1f} s, then the API {api:.1f} s, the workers {workers:.1f} s"
    pids = frozenset(str(w.pid) for w in cluster.workers)
    # Immediate is a crash: the commits that did not wait for the disk may be lost (history.py).
    fault = Fault(f"pg-restart {mode}", pids, began, time.time(), mode == "immediate")
    return fault, timing


def test_postgres_restarts_and_everyone_reconnects_losing_nothing(
    private_pg: PrivatePostgres, spawn: Spawn, tmp_path: Path, record_property: RecordProperty
) -> None:
    runs = tmp_path / "runs.jsonl"
    env = test_env(private_pg.url, JOBHANDLER_APP="chaosapp:app", CHAOSAPP_RUNS=str(runs))
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready(30)
    db = Db(private_pg.url)
    try:
        cluster = Cluster(spawn, env, env, runs, db)
        clients = Clients(api.url)
        began = time.monotonic()
        with clients:
            # Every worker past its start first: one that cannot reach the store while it
            # starts exits (exit code 3, docs/how-to/postgres.md) for its supervisor to restart.
            cluster.all_serving(since=0)
            wait_until(lambda: len(clients.acked) >= 20, timeout=30)
            done = [restart(private_pg, cluster, clients, mode) for mode in ("fast", "immediate")]
        faults = [fault for fault, _ in done]
        refused = sum(a.status is None or a.status >= 500 for a in clients.answers)
        timings = "; ".join(timing for _, timing in done)
        name = f"PostgreSQL restarts ({timings}; {refused} requests answered 5xx or none)"
        summary = conclude(name, began, clients.ops, runs, faults, db, record_property, tmp_path)
        assert summary.jobs > 20
    finally:
        db.close()


def test_after_a_long_outage_api_and_worker_serve_again_at_once(
    private_pg: PrivatePostgres, spawn: Spawn, tmp_path: Path
) -> None:
    """The pool's retries of a lost connection must not back off past the outage: after 16 s
    down, its tries came 1, 2, 4, 8, 16 s apart, and the API answered 503 for 15 s more."""
    runs = tmp_path / "runs.jsonl"
    env = test_env(private_pg.url, JOBHANDLER_APP="chaosapp:app", CHAOSAPP_RUNS=str(runs))
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready(30)
    spawn(["worker", *TIMING], env)
    with httpx.Client(base_url=api.url, timeout=30) as http:
        job = {"task": "step", "payload": {}}
        first = http.post("/jobs", json=job).json()["id"]
        assert http.get(f"/jobs/{first}", params={"wait": 30}).json()["status"] == "completed"
        private_pg.stop()
        down = time.monotonic()
        while time.monotonic() - down < 16:  # clients keep asking: every answer a prompt 503
            began = time.monotonic()
            assert http.get("/readyz").status_code == 503
            assert time.monotonic() - began < 7
            time.sleep(0.5)
        private_pg.start()
        up = time.monotonic()
        wait_until(lambda: http.get("/readyz").status_code == 200, timeout=30)
        assert time.monotonic() - up < 4, "the API served again long after the database"
        later = http.post("/jobs", json=job).json()["id"]
        done = http.get(f"/jobs/{later}", params={"wait": 30}).json()
        assert done["status"] == "completed"
        assert time.monotonic() - up < 8, "the worker served again long after the database"
