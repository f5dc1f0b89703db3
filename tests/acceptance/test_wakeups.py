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


def test_idle_worker_wakes_when_a_workflow_job_comes_due(
    spawn: Callable[..., Process], database_url: str
) -> None:
    """A workflow's submit wakes the worker (it polls every 30 s), and so does each end that
    makes a job due: a's for b and c, the later of b and c's for d."""
    env = test_env(database_url, JOBHANDLER_DEMO_DELAY="0", JOBHANDLER_POLL_INTERVAL="30")
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready()
    spawn(["worker"], env)
    jobs = [
        {"key": "a", "payload": "a"},
        {"key": "b", "payload": "b", "after": ["a"]},
        {"key": "c", "payload": "c", "after": ["a"]},
        {"key": "d", "payload": "d", "after": ["b", "c"]},
    ]
    with httpx.Client(base_url=api.url, timeout=30) as http:
        wait_until(lambda: len(http.get("/workers").json()) == 1)
        started = time.monotonic()
        made = http.post("/workflows", json={"name": "wake", "jobs": jobs})
        assert made.status_code == 201, made.text
        (last,) = [j["id"] for j in made.json()["jobs"] if j["key"] == "d"]
        done = http.get(f"/jobs/{last}", params={"wait": 20}).json()
        statuses = {
            j["key"]: http.get(f"/jobs/{j['id']}").json()["status"] for j in made.json()["jobs"]
        }
        assert done["status"] == "completed", statuses
        assert time.monotonic() - started < 5
