"""Periodic jobs with real processes on both stores: three workers (one of them the API
server) run ``every=1`` for 10 s and make exactly one job per due time; the schedules show
through HTTP and the CLI, and a pause from the CLI holds until the resume."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import Process, Server, run_cli, test_env, wait_until

WINDOW = 10.0


def tick_runs(url: str) -> list[float]:
    """The due times (run_at) of every job of the ``tick`` schedule so far."""
    jobs = httpx.get(f"{url}/jobs", params={"task": "tick", "limit": 1000}).json()
    return [_epoch(job["run_at"]) for job in jobs]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def schedules(url: str) -> dict[str, Any]:
    return {s["name"]: s for s in httpx.get(f"{url}/schedules").json()}


def test_three_workers_make_one_job_per_due_time_and_a_pause_holds(
    database_url: str, spawn: Callable[..., Process]
) -> None:
    # database_url first: its database must outlive the processes (stopped before it is dropped).
    env = test_env(database_url, JOBHANDLER_APP="periodicapp:app")
    server = spawn(["serve"], env, server=True)
    spawn(["worker"], env)
    spawn(["worker"], env)
    assert isinstance(server, Server)
    server.wait_ready(timeout=60)
    # Until the schedule has run for WINDOW seconds with the three workers up.
    wait_until(lambda: (runs := tick_runs(server.url)) and max(runs) - min(runs) >= WINDOW, 60)
    runs = tick_runs(server.url)
    duplicates = [due for due, n in Counter(runs).items() if n > 1]
    assert not duplicates, f"due times with more than one job: {duplicates}"
    assert all(due == int(due) for due in runs)  # every=1: on whole seconds
    assert len(runs) >= WINDOW - 2, f"only {len(runs)} runs over {WINDOW:g} s"

    listed = schedules(server.url)
    assert set(listed) == {"tick", "nightly"}
    assert listed["nightly"]["cron"] == "0 3 * * *" and listed["nightly"]["missed"] == "catch_up"
    assert listed["tick"]["every"] == 1.0 and listed["tick"]["last_job_id"]
    table = run_cli("schedules", "--url", server.url)
    assert table.returncode == 0, table.stderr
    assert "every 1s" in table.stdout and "Europe/Berlin" in table.stdout

    paused = run_cli("schedules", "pause", "tick", "--url", server.url, "-o", "json")
    assert paused.returncode == 0, paused.stderr
    assert '"paused": true' in paused.stdout
    # A run is made in the transaction that checks the pause: none can follow this count.
    before = len(tick_runs(server.url))
    paused_next = _epoch(schedules(server.url)["tick"]["next_run_at"])
    # Two due times pass while paused: the next run moves on, and no job is made.
    wait_until(lambda: _epoch(schedules(server.url)["tick"]["next_run_at"]) >= paused_next + 2)
    assert len(tick_runs(server.url)) == before
    resumed: Any = httpx.post(f"{server.url}/schedules/tick/resume").json()
    assert resumed["paused"] is False
    wait_until(lambda: len(tick_runs(server.url)) > before, timeout=10)
    missing = run_cli("schedules", "pause", "nope", "--url", server.url)
    assert missing.returncode != 0 and "no schedule named 'nope'" in missing.stderr
