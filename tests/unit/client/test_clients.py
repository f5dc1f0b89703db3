"""Client and AsyncClient over the whole HTTP API: typed answers, pages, problem JSON as errors.

AsyncClient runs in-process against the real FastAPI app (httpx's ASGI transport); Client
against a real server process.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from jobhandler import (
    App,
    AsyncClient,
    Client,
    ClientError,
    InvalidJob,
    JobNotFound,
    JobStatus,
    ServerUnreachable,
)
from jobhandler.http import create_app
from jobhandler.model.errors import (
    Conflict,
    NotFound,
    RemoteJobNotFound,
    Unauthorized,
    Unprocessable,
)
from jobhandler.testing import temporary_settings
from tests.conftest import Server

BASE = "http://127.0.0.1:8080"


def make_app() -> App:
    app = App()

    @app.task(queue="text")
    async def shout(text: str) -> str:
        return text.upper()

    return app


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[App, httpx.AsyncClient, AsyncClient]]:
    app = make_app()
    async with app.connected(temporary_settings(tmp_path)):
        transport = httpx.ASGITransport(create_app(app))
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE) as raw,
            AsyncClient(BASE, transport=transport) as client,
        ):
            yield app, raw, client


async def test_jobs_round_trip_as_typed_models_with_the_servers_json(
    served: tuple[App, httpx.AsyncClient, AsyncClient],
) -> None:
    _, raw, client = served
    before = time.time()
    job = await client.submit("shout", "hi", priority=5, delay=3600)
    assert (job.task, job.queue, job.priority, job.status) == ("shout", "text", 5, "scheduled")
    assert before <= job.created_at <= time.time()  # epoch seconds, as on Job
    assert job.run_at == pytest.approx(job.created_at + 3600, abs=1)
    # The same JSON on both sides of the wire: times as RFC 3339 text, to the microsecond.
    answer = (await raw.get(f"/jobs/{job.id}")).json()
    assert json.loads((await client.get(job.id)).model_dump_json()) == answer
    assert answer["created_at"].endswith("Z")

    batch = await client.submit_many([{"task": "shout", "payload": f"n{i}"} for i in range(4)])
    assert [j.payload for j in batch.jobs] == ["n0", "n1", "n2", "n3"]
    listed = [j.id async for j in client.list_jobs(task="shout", page_size=2)]  # three pages
    assert listed == [j.id for j in reversed(batch.jobs)] + [job.id]
    assert [j.id async for j in client.list_jobs(status=["scheduled"])] == [job.id]
    assert (await client.wait(job.id, timeout=0.1)).status is JobStatus.SCHEDULED


async def test_actions_and_their_problems_as_exceptions(
    served: tuple[App, httpx.AsyncClient, AsyncClient],
) -> None:
    _, _, client = served
    job = await client.submit("shout", "hi", delay=3600)
    with pytest.raises(Conflict) as conflict:
        await client.delete(job.id)  # only a finished job can be deleted
    assert (conflict.value.status, conflict.value.job_status) == (409, "scheduled")
    assert (await client.cancel(job.id)).status is JobStatus.CANCELLED
    assert (await client.retry(job.id)).status is JobStatus.QUEUED
    await client.cancel(job.id)
    assert await client.delete(job.id) is None
    with pytest.raises(JobNotFound) as missing:  # the service's own class, over HTTP too
        await client.get(job.id)
    assert isinstance(missing.value, RemoteJobNotFound | ClientError)
    assert (missing.value.job_id, missing.value.status) == (job.id, 404)
    with pytest.raises(InvalidJob) as refused:
        await client.submit("shout", 42)
    assert isinstance(refused.value, Unprocessable)
    assert refused.value.errors[0]["loc"] == ["payload"]
    with pytest.raises(InvalidJob, match="unknown task"):
        await client.submit("nope", None)


async def test_tasks_queues_and_workers(
    served: tuple[App, httpx.AsyncClient, AsyncClient],
) -> None:
    _, _, client = served
    [task] = await client.tasks()
    assert (task.name, task.queue, task.payload_schema) == ("shout", "text", {"type": "string"})
    await client.submit("shout", "hi")
    [queue] = [q for q in await client.queues() if q.queue == "text"]
    assert queue.counts[JobStatus.QUEUED] == 1
    assert await client.workers() == []
    assert await client.ready()


async def test_queue_controls_bulk_and_attempts(
    served: tuple[App, httpx.AsyncClient, AsyncClient],
) -> None:
    _, _, client = served
    job = await client.submit("shout", "hi")
    assert (await client.pause_queue("text")).paused
    limited = await client.update_queue("text", concurrency=2, rate_limit="10/s")
    assert (limited.concurrency, limited.rate_limit) == (2, "10/s")
    assert not (await client.resume_queue("text")).paused
    assert await client.attempts(job.id) == []
    assert (await client.bulk("cancel", queue="text")).count == 1
    assert (await client.get(job.id)).status is JobStatus.CANCELLED
    assert await client.schedules() == []


async def test_workflows_as_typed_models_and_their_problems_as_exceptions(
    served: tuple[App, httpx.AsyncClient, AsyncClient],
) -> None:
    _, raw, client = served
    jobs = [
        {"key": "a", "task": "shout", "payload": "x", "delay": 3600, "unique_key": "k"},
        {"key": "b", "task": "shout", "payload": "y", "after": ["a"]},
    ]
    flow = await client.submit_workflow("pair", jobs)
    assert flow.status == "running"
    assert [(j.key, j.status, j.after) for j in flow.jobs] == [
        ("a", JobStatus.SCHEDULED, []),
        ("b", JobStatus.WAITING, ["a"]),
    ]
    answer = (await raw.get(f"/workflows/{flow.id}")).json()
    assert json.loads((await client.get_workflow(flow.id)).model_dump_json()) == answer
    child = await client.get(flow.jobs[1].id)
    assert (child.workflow_id, child.workflow_key) == (flow.id, "b")
    assert child.after == [flow.jobs[0].id]
    [listed] = await client.list_workflows(name="pair")
    assert (listed.id, listed.counts[JobStatus.WAITING]) == (flow.id, 1)
    with pytest.raises(Conflict) as held:  # "k" is held by the first workflow's job a
        await client.submit_workflow("again", jobs)
    assert held.value.body["holders"] == {"k": flow.jobs[0].id}
    assert (await client.cancel_workflow(flow.id)).status == "cancelled"
    assert await client.list_workflows(status=["running"]) == []
    with pytest.raises(NotFound) as missing:
        await client.get_workflow(flow.jobs[0].id)  # a job's id is no workflow's
    assert missing.value.status == 404
    with pytest.raises(InvalidJob) as refused:
        loop = [{"key": "a", "task": "shout", "payload": "x", "after": ["a"]}]
        await client.submit_workflow("loop", loop)
    assert isinstance(refused.value, Unprocessable)
    assert refused.value.errors[0]["loc"] == ["jobs", 0, "after", 0]
    assert [w.name for w in await client.list_workflows()] == ["pair"]


def test_the_sync_client_against_a_real_server(server: Server) -> None:
    with Client(server.url) as client:
        job = client.submit("reverse", "abc")
        done = client.wait(job.id, timeout=20)
        assert (done.status, done.result) == ("completed", "cba")
        assert [j.id for j in client.list_jobs(page_size=1)] == [job.id]
        flow = client.submit_workflow("two", [{"key": "a", "payload": "ab"}])
        assert client.wait(flow.jobs[0].id, timeout=20).result == "ba"
        assert client.get_workflow(flow.id).status == "completed"
        assert [w.id for w in client.list_workflows(limit=1)] == [flow.id]
        with pytest.raises(RemoteJobNotFound):
            client.cancel("00000000-0000-7000-8000-000000000000")
    with Client(server.url, token="jh_wrong") as client:
        assert client.ready()  # health checks need no token
        client.submit("reverse", "abc")  # an open server (no tokens made) takes any
    with Client("http://127.0.0.1:9", timeout=2) as nowhere, pytest.raises(ServerUnreachable):
        nowhere.tasks()
    assert issubclass(Unauthorized, ClientError)
