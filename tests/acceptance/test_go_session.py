"""The Go service's README session, replayed verbatim with curl against `jobhandler serve`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

from tests.conftest import Process, Server, test_env, wait_until


def curl(*args: str) -> tuple[int, dict | list]:  # type: ignore[type-arg]
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True
    ).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


def create(server: Server, body: str) -> tuple[int, dict | list]:  # type: ignore[type-arg]
    """The Go README's create request, as it is written there."""
    return curl(
        "-X", "POST", "-H", "Content-Type: application/json", "-d", body, f"{server.url}/jobs"
    )


def start(spawn: Callable[..., Process], sqlite_url: str, delay: str | None) -> Server:
    env = test_env(sqlite_url)
    if delay is None:
        env.pop("JOBHANDLER_DEMO_DELAY")  # the default, as the Go service had it
    else:
        env["JOBHANDLER_DEMO_DELAY"] = delay
    server = spawn(["serve"], env, server=True)
    assert isinstance(server, Server)
    return server.wait_ready()


def test_readme_session_with_the_default_delay(
    spawn: Callable[..., Process], sqlite_url: str
) -> None:
    server = start(spawn, sqlite_url, delay=None)
    code, job = create(server, '{"payload":"hello"}')
    assert code == 201 and job["status"] == "queued" and job["id"]  # type: ignore[index]
    job_id = job["id"]  # type: ignore[index]
    submitted = time.monotonic()

    code, got = curl(f"{server.url}/jobs/{job_id}")
    assert code == 200 and got["id"] == job_id and got["payload"] == "hello"  # type: ignore[index]
    for field in ("status", "result", "error", "created_at", "updated_at"):
        assert field in got

    code, listed = curl(f"{server.url}/jobs")
    assert code == 200 and isinstance(listed, list) and listed[0]["id"] == job_id

    wait_until(lambda: curl(f"{server.url}/jobs/{job_id}")[1]["status"] == "completed", 15)  # type: ignore[index]
    took = time.monotonic() - submitted
    assert 2.5 < took < 6, took  # the demo task waits 3 s, as the Go service did
    _, done = curl(f"{server.url}/jobs/{job_id}")
    assert done["result"] == "olleh" and done["error"] is None  # type: ignore[index]

    code, refused = curl("-X", "POST", f"{server.url}/jobs/{job_id}/cancel")
    assert code == 409 and refused["error"] == "job cannot be cancelled"  # type: ignore[index]

    code, missing = curl(f"{server.url}/jobs/no-such-id")
    assert code == 404 and missing == {**missing, "error": "job not found"}  # type: ignore[dict-item]

    code, bad = create(server, "{}")
    assert code == 400 and "payload" in bad["error"]  # type: ignore[index]


def test_cancelling_a_processing_job(spawn: Callable[..., Process], sqlite_url: str) -> None:
    server = start(spawn, sqlite_url, delay="30")
    _, job = create(server, '{"payload":"hello"}')
    job_id = job["id"]  # type: ignore[index]
    wait_until(lambda: curl(f"{server.url}/jobs/{job_id}")[1]["status"] == "processing")  # type: ignore[index]
    code, cancelled = curl("-X", "POST", f"{server.url}/jobs/{job_id}/cancel")
    assert code == 200 and cancelled["status"] == "cancelled"  # type: ignore[index]
    _, after = curl(f"{server.url}/jobs/{job_id}")
    assert after["status"] == "cancelled" and after["result"] is None  # type: ignore[index]


def test_short_delay_like_the_go_tests(spawn: Callable[..., Process], sqlite_url: str) -> None:
    server = start(spawn, sqlite_url, delay="0.01")
    words = ("abc", "racecar", "")
    ids = [create(server, json.dumps({"payload": w}))[1]["id"] for w in words]  # type: ignore[index]
    results = [curl(f"{server.url}/jobs/{i}?wait=10")[1]["result"] for i in ids]  # type: ignore[index]
    assert results == ["cba", "racecar", ""]
