"""Debounce under racing submitters (issue #21 items 3 and 8): four clients submit one key
through two ``serve`` processes (API and worker each) on one store; one job runs, once, with
the payload of the submit that committed last, once the submits stop."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import Process, Server, test_env, wait_until

ENV = {"JOBHANDLER_APP": "debounceapp:app", "JOBHANDLER_POLL_INTERVAL": "0.05"}
BODY = {"task": "search", "unique_key": "box-1", "debounce": 3, "debounce_max_wait": 120}


def test_racing_submitters_on_two_servers_run_one_job_with_the_last_payload(
    spawn: Callable[..., Process], database_url: str
) -> None:
    env = test_env(database_url, **ENV)
    servers = [spawn(["serve"], env, server=True) for _ in range(2)]
    urls = []
    for server in servers:
        assert isinstance(server, Server)
        urls.append(server.wait_ready(timeout=60).url)

    def typist(n: int) -> list[dict[str, Any]]:
        answers = []
        with httpx.Client(timeout=30) as http:
            for i in range(12):  # alternating between the servers
                answer = http.post(f"{urls[i % 2]}/jobs", json={**BODY, "payload": f"{n}-{i}"})
                assert answer.status_code in (200, 201), answer.text
                answers.append(answer.json())
        return answers

    with ThreadPoolExecutor(4) as pool:
        answers = [a for each in pool.map(typist, range(4)) for a in each]
    assert len({a["id"] for a in answers}) == 1
    assert all(a["status"] == "scheduled" for a in answers)  # none started while typing
    http = httpx.Client(base_url=urls[0], timeout=30)
    job_id = answers[0]["id"]
    wait_until(lambda: http.get(f"/jobs/{job_id}").json()["status"] == "completed", timeout=30)
    job = http.get(f"/jobs/{job_id}").json()
    assert job["attempt"] == 1
    assert job["result"] == job["payload"] in {f"{n}-11" for n in range(4)}
    assert [j["id"] for j in http.get("/jobs").json()] == [job_id]
