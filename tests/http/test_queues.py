"""Queues over HTTP and the CLI, against a real `jobhandler serve` (API and worker, SQLite):
limits changed at run time, checked at the edge, and a submit to a queue nobody serves."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Process, Server, run_cli, test_env

UNSERVED = "x-jobhandler-unserved-queues"


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def queue(http: httpx.Client, name: str) -> dict[str, Any]:
    (found,) = [q for q in http.get("/queues").json() if q["queue"] == name]
    return dict(found)


def test_patch_sets_and_removes_limits_and_flags_unserved(
    http: httpx.Client,
) -> None:
    assert queue(http, "default")["served"] is True  # serve runs a worker
    set_both = http.patch("/queues/default", json={"concurrency": 3, "rate_limit": "10/min"})
    assert set_both.status_code == 200, set_both.text
    assert set_both.json()["concurrency"] == 3 and set_both.json()["rate_limit"] == "10/min"
    # A member left out stays; null removes.
    removed = http.patch("/queues/default", json={"rate_limit": None}).json()
    assert removed["concurrency"] == 3 and removed["rate_limit"] is None
    assert queue(http, "default")["concurrency"] == 3
    for bad in ({"concurrency": 0}, {"rate_limit": "fast"}, {"rate_limit": "0/s"}, {"x": 1}):
        response = http.patch("/queues/default", json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert http.patch("/queues/bad name", json={}).status_code == 422
    assert queue(http, "default")["concurrency"] == 3  # nothing written by a refusal

    # A submit to a queue no live worker serves: the jobs wait, and the answer says so.
    served = http.post("/jobs", json={"payload": "x"})
    assert served.status_code == 201 and UNSERVED not in served.headers
    lonely = http.post("/jobs", json={"payload": "x", "queue": "nobody"})
    assert lonely.status_code == 201 and lonely.headers[UNSERVED] == "nobody"
    batch = http.post("/jobs/batch", json={"jobs": [{"payload": "x", "queue": "nobody"}] * 2})
    assert batch.status_code == 201 and batch.headers[UNSERVED] == "nobody"
    assert queue(http, "nobody")["served"] is False


def test_limits_and_resume_from_the_cli(http: httpx.Client, server: Server) -> None:
    url = ["--url", server.url]
    assert http.post("/jobs", json={"payload": "x", "queue": "mail"}).status_code == 201
    assert http.post("/queues/mail/pause", json={}).json()["paused"] is True
    done = run_cli("queues", "set", "mail", "--concurrency", "4", "--rate-limit", "5/s", *url)
    assert done.returncode == 0, done.stderr
    resumed = run_cli("queues", "resume", "mail", *url)
    assert resumed.returncode == 0 and "mail" in resumed.stdout
    listed = run_cli("queues", "-o", "json", *url)
    (mail,) = [q for q in json.loads(listed.stdout) if q["queue"] == "mail"]
    assert not mail["paused"] and mail["concurrency"] == 4 and mail["rate_limit"] == "5/s"
    assert mail["served"] is False  # serve's worker serves the demo's queue only


QUEUE_ACTIONS = (
    ("PATCH", "", {"concurrency": 2}),
    ("POST", "/pause", {}),
    ("POST", "/resume", {}),
)


def test_an_action_on_a_queue_nothing_knows_is_404_and_writes_nothing(
    spawn: Callable[..., Process], database_url: str
) -> None:
    """A made-up name is not created by pausing it (HTTP, CLI), on both stores; a queue a
    task names, one with jobs, and one a worker serves are known before anything is stored."""
    server = spawn(["serve", "--app", "fuzzapp:app"], test_env(database_url), server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = http.get("/queues").json()
        for method, action, body in QUEUE_ACTIONS:
            response = http.request(method, f"/queues/made-up{action}", json=body)
            assert response.status_code == 404, (method, action, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "made-up" in response.json()["error"]
        done = run_cli("queues", "pause", "made-up", "--url", server.url)  # the CLI's 4xx
        assert done.returncode == 2 and "made-up" in done.stderr, done.stderr
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/ui/queues").text)
        assert csrf is not None
        refused = http.post("/ui/queues/made-up/pause", data={"csrf_token": csrf.group(1)})
        assert refused.status_code == 404 and "made-up" in refused.text  # the dashboard's
        assert http.get("/queues").json() == before  # nothing was written
        # Known: a task's queue ("orders", with no job in it), one with a job ("busy").
        assert http.post("/queues/orders/pause", json={}).json()["paused"] is True
        assert http.post("/jobs", json={"payload": "x", "queue": "busy"}).status_code == 201
        assert http.patch("/queues/busy", json={"concurrency": 2}).json()["concurrency"] == 2
        assert http.post("/queues/default/resume", json={}).status_code == 200


def test_key_limits_are_set_at_run_time_on_both_stores(
    spawn: Callable[..., Process], database_url: str
) -> None:
    """``key_concurrency`` and ``key_rate_limit`` (docs/tenants.md) as PATCH, the CLI and the
    dashboard's form set them; a member left out stays, null removes, a bad value writes
    nothing; a job's concurrency_key shows in GET /jobs/{id} and on its page."""
    server = spawn(["serve", "--app", "fuzzapp:app"], test_env(database_url), server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = http.post("/jobs", json={"payload": "x", "queue": "busy", "concurrency_key": "acme"})
        assert job.status_code == 201 and job.json()["concurrency_key"] == "acme", job.text
        assert http.get(f"/jobs/{job.json()['id']}").json()["concurrency_key"] == "acme"
        assert "acme" in http.get(f"/ui/jobs/{job.json()['id']}").text
        both = http.patch("/queues/busy", json={"key_concurrency": 2, "key_rate_limit": "5/s"})
        assert both.status_code == 200, both.text
        assert both.json()["key_concurrency"] == 2 and both.json()["key_rate_limit"] == "5/s"
        kept = http.patch("/queues/busy", json={"key_rate_limit": None}).json()
        assert kept["key_concurrency"] == 2 and kept["key_rate_limit"] is None
        for bad in ({"key_concurrency": 0}, {"key_concurrency": 10**7}, {"key_rate_limit": "x"}):
            response = http.patch("/queues/busy", json=bad)
            assert response.status_code == 422, (bad, response.text)
        assert queue(http, "busy")["key_concurrency"] == 2  # nothing written by a refusal
        done = run_cli("queues", "set", "busy", "--key-concurrency", "none", "--url", server.url)
        assert done.returncode == 0, done.stderr
        done = run_cli("queues", "set", "busy", "--key-rate-limit", "9/min", "--url", server.url)
        assert done.returncode == 0, done.stderr
        shown = queue(http, "busy")
        assert shown["key_concurrency"] is None and shown["key_rate_limit"] == "9/min"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/ui/queues").text)
        assert csrf is not None
        form = {"csrf_token": csrf.group(1), "concurrency": "", "rate_limit": ""}
        form |= {"key_concurrency": "3", "key_rate_limit": ""}
        http.post("/ui/queues/busy/limits", data=form)
        shown = queue(http, "busy")
        assert shown["key_concurrency"] == 3 and shown["key_rate_limit"] is None
