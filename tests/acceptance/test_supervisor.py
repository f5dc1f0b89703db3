"""`jobhandler worker --processes N`: N workers under a supervisor that restarts the dead."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import httpx

from tests.conftest import Process, Server, test_env, wait_until


def test_supervisor_restarts_a_killed_worker_and_drains_on_sigterm(
    spawn: Callable[..., Process], sqlite_url: str
) -> None:
    env = test_env(sqlite_url, JOBHANDLER_HEARTBEAT_INTERVAL="0.2", JOBHANDLER_LEASE="2")
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready()
    supervisor = spawn(["worker", "--processes", "2"], env)
    http = httpx.Client(base_url=api.url, timeout=30)

    def live_pids() -> set[int]:
        return {w["pid"] for w in http.get("/workers").json()}

    wait_until(lambda: len(live_pids()) == 2)
    first = live_pids()
    assert supervisor.pid not in first  # the supervisor itself runs no jobs

    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(live_pids() - first) == 1)  # a new child registered

    ids = [http.post("/jobs", json={"payload": f"w{i}"}).json()["id"] for i in range(20)]
    for job_id in ids:
        assert http.get(f"/jobs/{job_id}", params={"wait": 20}).json()["status"] == "completed"

    supervisor.popen.send_signal(signal.SIGTERM)
    assert supervisor.popen.wait(timeout=20) == 0
    assert "restarting" in supervisor.output()
    wait_until(lambda: not (live_pids() - {victim}))  # the live children deregistered
