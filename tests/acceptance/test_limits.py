"""Flow control across real worker processes (issue #10): a concurrency limit and a rate limit
hold over every worker, and a paused queue starts nothing, through a restart, until resumed.
Each run leaves its start and end in a ledger (tests/apps/flowapp.py) replayed here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.apps.flowapp import most_at_once, runs
from tests.conftest import Process, Server, run_cli, test_env, wait_until

FAST = {"JOBHANDLER_APP": "flowapp:app", "JOBHANDLER_POLL_INTERVAL": "0.05"}


def cluster(
    spawn: Callable[..., Process],
    url: str,
    ledger: Path,
    workers: int,
    queues: str,
    **settings: str,
) -> tuple[httpx.Client, dict[str, str]]:
    """An API server and ``workers`` worker processes, all registered."""
    ledger.mkdir()
    env = test_env(url, FLOWAPP_LEDGER=str(ledger), **FAST, **settings)
    api = spawn(["serve", "--no-worker"], env, server=True)
    procs = [spawn(["worker", "--queues", queues], env) for _ in range(workers)]
    assert isinstance(api, Server)
    http = httpx.Client(base_url=api.wait_ready(timeout=60).url, timeout=30)
    wait_until(lambda: len(http.get("/workers").json()) == len(procs), timeout=30)
    return http, env


def counts(http: httpx.Client, queue: str) -> dict[str, int]:
    found = {q["queue"]: q for q in http.get("/queues").json()}
    return found[queue]["counts"] if queue in found else {}


def submit(http: httpx.Client, task: str, payload: object, n: int) -> None:
    response = http.post("/jobs/batch", json={"jobs": [{"task": task, "payload": payload}] * n})
    assert response.status_code == 201, response.text


def test_three_workers_never_run_more_than_the_limit_at_once(
    spawn: Callable[..., Process], database_url: str, tmp_path: Path
) -> None:
    http, _ = cluster(spawn, database_url, tmp_path / "ledger", 3, "limited")
    (limited,) = [q for q in http.get("/queues").json() if q["queue"] == "limited"]
    assert limited["concurrency"] == 2 and limited["served"]  # declared in code, written
    submit(http, "slow", 0.1, 24)
    wait_until(lambda: counts(http, "limited").get("completed") == 24, timeout=40)
    ledger = runs(str(tmp_path / "ledger"), "limited")
    assert len(ledger) == 24
    assert most_at_once(ledger) == 2  # reached, never passed, over three processes


def test_a_rate_limit_holds_over_three_workers(
    spawn: Callable[..., Process], pg_database_url: str, tmp_path: Path
) -> None:
    http, _ = cluster(spawn, pg_database_url, tmp_path / "ledger", 3, "rated")
    submit(http, "quick", None, 80)
    wait_until(lambda: counts(http, "rated").get("completed") == 80, timeout=40)
    starts = [s for s, _ in runs(str(tmp_path / "ledger"), "rated")]
    # A full bucket (20) goes at once; the 60 after it come at the rate: 20/s, within 10%.
    burst_end, rest = starts[19], starts[20:]
    rate = len(rest) / (rest[-1] - burst_end)
    assert 18 <= rate <= 22, rate


def test_pause_holds_through_a_restart_and_resume_lets_them_run(
    spawn: Callable[..., Process], sqlite_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    # Two slots a worker, so that most jobs still wait when the pause comes.
    http, env = cluster(spawn, sqlite_url, ledger, 2, "pausable", JOBHANDLER_CONCURRENCY="2")
    submit(http, "nap", 0.1, 200)
    wait_until(lambda: counts(http, "pausable").get("completed", 0) >= 10)
    paused = run_cli("queues", "pause", "pausable", "--url", str(http.base_url), env=env)
    assert paused.returncode == 0 and "pausable" in paused.stdout, paused.stderr
    # Running jobs finish; none starts after that.
    wait_until(lambda: counts(http, "pausable").get("processing") == 0)
    done = counts(http, "pausable")["completed"]
    assert done < 200 and counts(http, "pausable")["queued"] == 200 - done
    # Through a restart: a new worker finds the queue paused in the store.
    spawn(["worker", "--queues", "pausable"], env)
    wait_until(lambda: len(http.get("/workers").json()) == 3)
    (queue,) = [q for q in http.get("/queues").json() if q["queue"] == "pausable"]
    assert queue["paused"] and queue["counts"]["completed"] == done
    assert len(runs(str(ledger), "pausable")) == done

    response = http.post("/queues/pausable/resume", json={})
    assert response.status_code == 200 and response.json()["paused"] is False
    wait_until(lambda: counts(http, "pausable").get("completed") == 200, timeout=40)
