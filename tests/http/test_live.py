"""Attempt history and live events over HTTP, with a real server and worker; the feed itself
in-process over a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from jobhandler.model.jobs import NewJob
from jobhandler.service.live import JobFeed
from jobhandler.settings import Settings
from jobhandler.store import open_store
from tests.conftest import Server, run_cli

DEADLINE = 20.0


def sse_jobs(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The ``job`` events of a stream, each the job's JSON, as they arrive."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if event.get("event") == "job":
                yield json.loads(event["data"])
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def test_a_job_streams_until_finished_and_keeps_every_attempt(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
        job = http.post("/jobs", json={"task": "flaky", "payload": 1}).json()
        seen = []
        with http.stream("GET", f"/jobs/{job['id']}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for event in sse_jobs(stream):
                assert event["id"] == job["id"]
                seen.append(event["status"])
        # The stream ends once the job is finished; the first run's failure showed on the way.
        assert seen[-1] == "completed", seen
        assert "scheduled" in seen or "processing" in seen, seen

        attempts = http.get(f"/jobs/{job['id']}/attempts").json()
        assert [a["outcome"] for a in attempts] == ["scheduled", "completed"]
        assert attempts[0]["error"].endswith("attempt 1 failed on purpose")
        assert "RuntimeError" in attempts[0]["traceback"]
        assert attempts[1]["error"] is None and attempts[1]["worker_id"]
        # The job shows its last run only: the history kept the first one's error.
        assert http.get(f"/jobs/{job['id']}").json()["error"] is None

        assert http.get("/jobs/nope/attempts").status_code == 404
        assert http.get("/jobs/nope/events").status_code == 404
        assert http.get("/events", params={"queue": "a\x00b"}).status_code == 422

    shown = run_cli("jobs", "get", job["id"], "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert "OUTCOME" in shown.stdout and "attempt 1 failed on purpose" in shown.stdout
    as_json = json.loads(
        run_cli("jobs", "get", job["id"], "--url", server.url, "-o", "json").stdout
    )
    assert as_json["status"] == "completed" and len(as_json["attempts"]) == 2


def test_events_stream_what_matches_the_filter(server: Server) -> None:
    with (
        httpx.Client(base_url=server.url, timeout=DEADLINE) as http,
        http.stream("GET", "/events", params={"task": "reverse", "status": "completed"}) as stream,
    ):
        other = http.post("/jobs", json={"task": "flaky", "payload": 0}).json()
        wanted = http.post("/jobs", json={"task": "reverse", "payload": "abc"}).json()
        for event in sse_jobs(stream):
            assert (event["task"], event["status"]) == ("reverse", "completed"), event
            if event["id"] == wanted["id"]:
                assert event["result"] == "cba"
                break
        assert other["id"] != wanted["id"]


def new_jobs(n: int) -> list[NewJob]:
    return [
        NewJob(str(uuid.uuid4()), "t", "default", "p", 0, 3, None, time.time()) for _ in range(n)
    ]


async def test_a_slow_subscriber_is_dropped_and_the_others_get_everything(
    sqlite_url: str,
) -> None:
    store = open_store(Settings(database_url=sqlite_url))
    await store.migrate()
    try:
        feed = JobFeed(store.changed_jobs, interval=0.05)
        async with (
            feed.subscribe(lambda job: True) as fast,
            feed.subscribe(lambda j: True, 3) as slow,
        ):
            jobs = new_jobs(10)
            await store.insert_jobs(jobs, time.time())
            feed.kick()
            got: list[str] = []
            async with asyncio.timeout(DEADLINE):
                while len(got) < len(jobs):
                    job = await fast.next()
                    assert job is not None
                    got.append(job.id)
            assert sorted(got) == sorted(j.id for j in jobs)
            # The slow one had room for 3: it is told it was dropped instead of blocking.
            async with asyncio.timeout(DEADLINE):
                while (await slow.next()) is not None:
                    pass
            assert slow.dropped
    finally:
        await store.close()
