"""GET /metrics and the worker's --metrics-port: Prometheus text a scraper can parse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobhandler import App, Settings
from jobhandler.http import create_app
from jobhandler.worker import Worker
from tests.conftest import Process, free_port, test_env, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    app = App()

    @app.task(queue="mail")
    async def send(to: str) -> str:
        return to

    @app.task(max_attempts=1)
    async def broken(_: None) -> None:
        raise ValueError("nope")

    settings = Settings(database_url=database_url, poll_interval=0.05)
    async with app.connected(settings):
        transport = httpx.ASGITransport(create_app(app, settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield app, http


async def test_metrics_count_jobs_and_read_the_store(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    app, http = served
    later = await app.tasks.get("send").enqueue("x", delay=3600)
    for to in ("a", "b", "c"):
        await app.tasks.get("send").enqueue(to)
    failed = await app.tasks.get("broken").enqueue(None)
    worker = Worker(app, app.settings)
    run = asyncio.create_task(worker.run())
    try:
        await app.service.jobs.wait(failed.id, 10)
        answer = await http.get("/metrics")
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = parse(answer.text)
    mail = {"queue": "mail", "task": "send"}
    assert value(got, "jobhandler_jobs_submitted_total", **mail) == 4
    broken = {"queue": "default", "task": "broken"}
    assert value(got, "jobhandler_jobs_finished_total", **broken, status="failed") == 1
    assert value(got, "jobhandler_job_run_seconds_count", **broken) == 1
    assert value(got, "jobhandler_job_wait_seconds_count", **broken) == 1
    assert value(got, "jobhandler_queue_jobs", queue="mail", status="scheduled") == 1
    assert value(got, "jobhandler_queue_jobs", queue="default", status="failed") == 1
    assert ("jobhandler_queue_oldest_waiting_seconds", (("queue", "mail"),)) in got
    assert value(got, "jobhandler_workers") == 1
    assert value(got, "process_cpu_seconds_total") > 0
    assert later.status.value == "scheduled"


async def test_openmetrics_when_asked_and_the_read_scope_when_tokens_exist(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    app, http = served
    _, read = await app.service.tokens.create("read")
    _, submit = await app.service.tokens.create("submit")
    assert (await http.get("/metrics")).status_code == 401
    refused = await http.get("/metrics", headers={"Authorization": f"Bearer {submit}"})
    assert refused.status_code == 403
    open_metrics = await http.get(
        "/metrics",
        headers={"Authorization": f"Bearer {read}", "Accept": "application/openmetrics-text"},
    )
    assert open_metrics.status_code == 200
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")


def test_each_worker_process_serves_its_own_port(
    spawn: Callable[..., Process], sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()  # and port + 1, most likely free too
    env = test_env(sqlite_url, JOBHANDLER_LOG_FORMAT="json", JOBHANDLER_LOG_LEVEL="info")
    worker = spawn(["worker", "--processes", "2", "--metrics-port", str(port)], env)
    api = spawn(["serve", "--no-worker"], env, server=True)
    api.wait_ready()  # type: ignore[attr-defined]
    batch = {"jobs": [{"payload": f"job {n}"} for n in range(20)]}
    posted = httpx.post(f"{api.url}/jobs/batch", json=batch, timeout=30)  # type: ignore[attr-defined]
    ids = [job["id"] for job in posted.json()["jobs"]]

    def finished() -> float:
        total = 0.0
        for p in (port, port + 1):
            try:
                got = parse(httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=2).text)
            except httpx.HTTPError:
                return -1
            total += value(
                got,
                "jobhandler_jobs_finished_total",
                queue="default",
                task="reverse",
                status="completed",
            )
        return total

    wait_until(lambda: finished() == 20, timeout=30)
    lines = [json.loads(line) for line in api.output().splitlines() if line.startswith("{")]
    access = [x for x in lines if x["logger"] == "uvicorn.access" and x["path"] == "/jobs/batch"]
    assert len(access) == 1 and access[0]["method"] == "POST" and access[0]["status"] == 201
    worker.stop()
    events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    done = {x["job_id"] for x in events if x.get("event") == "completed"}
    assert done == set(ids)
