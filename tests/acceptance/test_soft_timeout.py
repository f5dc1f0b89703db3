"""A soft timeout (issue #21 item 7) asks a run to stop before its hard timeout: through
ctx.cancelled in every runner, and CancelledError at an async task's next await. A run that
returns after the ask completes; one that raises fails as timed out, retried by its policy.
A real ``serve`` process (API and worker) on each store; process tasks in its real children."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobhandler import App
from tests.conftest import Process, Server, test_env, wait_until

ENV = {"JOBHANDLER_APP": "softapp:app", "JOBHANDLER_POLL_INTERVAL": "0.05"}


@pytest.fixture
def http(spawn: Callable[..., Process], database_url: str) -> httpx.Client:
    server = spawn(["serve"], test_env(database_url, **ENV), server=True)
    assert isinstance(server, Server)
    return httpx.Client(base_url=server.wait_ready(timeout=60).url, timeout=30)


def run(http: httpx.Client, task: str, payload: Any) -> dict[str, Any]:
    answer = http.post("/jobs", json={"task": task, "payload": payload})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    done: dict[str, Any] = {}

    def settled() -> bool:
        done.update(http.get(f"/jobs/{job_id}").json())
        return done["status"] in ("completed", "failed")

    wait_until(settled, timeout=40)
    return done


@pytest.mark.parametrize("task", ["soft_async", "soft_thread", "soft_process"])
def test_a_run_asked_to_stop_that_returns_completes(http: httpx.Client, task: str) -> None:
    done = run(http, task, "finish")
    assert done["status"] == "completed", done
    assert done["result"] == "stopped cleanly, cancelled=True"


@pytest.mark.parametrize("task", ["soft_async", "soft_thread", "soft_process"])
def test_a_run_asked_to_stop_that_raises_times_out(http: httpx.Client, task: str) -> None:
    done = run(http, task, "raise")
    assert done["status"] == "failed", done
    assert done["error"].startswith("timed out after 0.5 s; soft timeout"), done["error"]
    if task != "soft_async":  # the async one re-raised the CancelledError itself
        assert "gave up, cancelled=True" in done["error"]


def test_a_soft_timeout_is_retried_by_the_policy(http: httpx.Client) -> None:
    done = run(http, "soft_retried", None)
    assert done["status"] == "failed" and done["attempt"] == 2, done
    assert done["error"].startswith("timed out after 0.5 s; soft timeout")


def test_a_run_that_ends_before_the_ask_is_not_touched(http: httpx.Client) -> None:
    done = run(http, "soft_quick", 0.05)
    assert done["status"] == "completed" and done["result"] == "done before the ask"


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"soft_timeout": 0}, "> 0"),
        ({"soft_timeout": -1}, "> 0"),
        ({"soft_timeout": math.nan}, "> 0"),
        ({"soft_timeout": math.inf}, "> 0"),
        ({"soft_timeout": 1e300}, "> 0"),
        ({"soft_timeout": True}, "> 0"),
        ({"soft_timeout": "5"}, "> 0"),
        ({"soft_timeout": 5, "timeout": 5}, "less than timeout"),
        ({"soft_timeout": 9, "timeout": 5}, "less than timeout"),
    ],
)
def test_a_bad_soft_timeout_is_refused_at_the_declaration(
    options: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        App().task(**options)(lambda: None)
