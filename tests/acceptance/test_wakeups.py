"""A worker in another process picks up a new job at once, not at its next poll."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.conftest import Process, Server, test_env, wait_until


def test_idle_worker_in_another_process_wakes_on_submit(
    spawn: Callable[..., Process], database_url: str
) -> None:
    env = test_env(database_url, JOBHANDLER_DEMO_DELAY="0", JOBHANDLER_POLL_INTERVAL="30")
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready()
    spawn(["worker"], env)
    with httpx.Client(base_url=api.url, timeout=30) as http:
        wait_until(lambda: len(http.get("/workers").json()) == 1)
        for _ in range(3):  # the worker is idle between these, far from its 30 s poll
            started = time.monotonic()
            job = http.post("/jobs", json={"payload": "abc"}).json()
            done = http.get(f"/jobs/{job['id']}", params={"wait": 20}).json()
            assert done["status"] == "completed"
            assert time.monotonic() - started < 5
