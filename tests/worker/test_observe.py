"""Job events (observe.py) from a real worker on both stores, and the log lines made of them."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from jobhandler import App, JobContext, RetryPolicy, Settings
from jobhandler.observe.events import JobEvent, Kind
from jobhandler.observe.logs import JsonLineFormatter, TextFormatter
from jobhandler.worker import Worker
from jobhandler.worker.maintenance import Rescuer

FAST_RETRY = RetryPolicy(base=0.01, max_delay=0.05, jitter=0)
FAST = {
    "poll_interval": 0.05,
    "heartbeat_interval": 0.2,
    "cancel_check_interval": 0.05,
    "rescue_interval": 0.2,
    "thread_cancel_grace": 0.2,
    "shutdown_timeout": 1,
}


def build_app() -> App:
    app = App()

    @app.task(queue="mail")
    async def greet(name: str, ctx: JobContext) -> str:
        ctx.logger.info("greeting %s", name, extra={"step": "hello"})
        return f"hi {name}"

    @app.task(max_attempts=2, retry=FAST_RETRY)
    async def flaky(_: None) -> None:
        raise ValueError("nope")

    @app.task(timeout=0.1, max_attempts=1)
    async def slow(_: None) -> None:
        await asyncio.sleep(30)

    @app.task
    async def forever(_: None) -> None:
        await asyncio.sleep(60)

    return app


@asynccontextmanager
async def observed(database_url: str) -> AsyncIterator[tuple[App, list[JobEvent]]]:
    app = build_app()
    seen: list[JobEvent] = []
    app.events.subscribe(seen.append)
    settings = Settings.model_validate({"database_url": database_url, **FAST})
    async with app.connected(settings):
        worker = Worker(app, settings)
        run = asyncio.create_task(worker.run())
        try:
            yield app, seen
        finally:
            worker.stop()
            await asyncio.wait_for(run, 10)


def kinds(seen: list[JobEvent], job_id: str) -> list[Kind]:
    return [e.kind for e in seen if e.job_id == job_id]


def worker_kinds(seen: list[JobEvent], job_id: str) -> list[Kind]:
    return [k for k in kinds(seen, job_id) if k is not Kind.SUBMITTED]


async def until_kind(seen: list[JobEvent], job_id: str, kind: Kind, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while kind not in kinds(seen, job_id):
        assert time.monotonic() < deadline, f"no {kind} for {job_id}: {kinds(seen, job_id)}"
        await asyncio.sleep(0.02)


async def test_every_run_end_is_one_event_with_its_fields(database_url: str) -> None:
    async with observed(database_url) as (app, seen):
        done = await app.tasks.get("greet").enqueue("ada")
        flaky = await app.tasks.get("flaky").enqueue(None)
        slow = await app.tasks.get("slow").enqueue(None)
        stuck = await app.tasks.get("forever").enqueue(None)
        for job_id, last in ((done.id, Kind.COMPLETED), (flaky.id, Kind.FAILED)):
            await until_kind(seen, job_id, last)
        await until_kind(seen, slow.id, Kind.TIMED_OUT)
        await until_kind(seen, stuck.id, Kind.STARTED)
        await app.service.jobs.cancel(stuck.id, wait=5)
        await until_kind(seen, stuck.id, Kind.CANCELLED)

    # The submitter's event and the worker's are told by two actors: a worker in the same
    # process may claim a job in the moment before its submitter's call returns.
    S, R = Kind.SUBMITTED, Kind.STARTED
    for job_id in (done.id, flaky.id, slow.id, stuck.id):
        assert kinds(seen, job_id).count(S) == 1
    assert worker_kinds(seen, done.id) == [R, Kind.COMPLETED]
    assert worker_kinds(seen, flaky.id) == [R, Kind.RETRIED, R, Kind.FAILED]
    assert worker_kinds(seen, slow.id) == [R, Kind.TIMED_OUT]
    assert worker_kinds(seen, stuck.id) == [R, Kind.CANCELLED]
    completed = next(e for e in seen if e.kind is Kind.COMPLETED)
    assert (completed.task, completed.queue, completed.attempt) == ("greet", "mail", 1)
    assert completed.duration is not None and 0 <= completed.duration < 5
    assert completed.worker_id is not None and completed.error is None
    started = next(e for e in seen if e.kind is Kind.STARTED and e.job_id == done.id)
    assert started.wait is not None and 0 <= started.wait < 5
    retried = next(e for e in seen if e.kind is Kind.RETRIED)
    assert retried.delay is not None and 0 <= retried.delay <= 0.05
    assert retried.error == "ValueError: nope" and retried.attempt == 1
    timed_out = next(e for e in seen if e.kind is Kind.TIMED_OUT)
    assert timed_out.delay is None and timed_out.error == "timed out after 0.1 s"


async def test_the_rescuer_reports_what_it_rescued(database_url: str) -> None:
    now = [1_000_000.0]
    app = App(clock=lambda: now[0])

    @app.task(max_attempts=3)
    async def lost(_: None) -> None: ...

    seen: list[JobEvent] = []
    app.events.subscribe(seen.append)
    settings = Settings(database_url=database_url)
    async with app.connected(settings):
        job = await lost.enqueue(None)
        (claimed,) = await app.service.store.claim_jobs(["default"], "gone", 1, now[0], lease=1.0)
        now[0] += 60
        await Rescuer(app, settings).run_once()
    (rescued,) = [e for e in seen if e.kind is Kind.RESCUED]
    assert (rescued.job_id, rescued.attempt, rescued.error) == (job.id, 1, "worker lost")
    assert rescued.delay is not None and rescued.delay > 0 and claimed.id == job.id


async def test_job_events_and_task_logs_carry_the_job_fields(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with observed(sqlite_url) as (app, seen):
        job = await app.tasks.get("greet").enqueue("ada")
        await until_kind(seen, job.id, Kind.COMPLETED)
    mine = [r for r in caplog.records if getattr(r, "job_id", None) == job.id]
    events = [(r.name, r.levelname, getattr(r, "event", None)) for r in mine]
    assert events == [
        ("jobhandler.jobs", "DEBUG", "submitted"),
        ("jobhandler.jobs", "DEBUG", "started"),
        ("jobhandler.task.greet", "INFO", None),
        ("jobhandler.jobs", "INFO", "completed"),
    ]
    task_record = mine[2]
    assert task_record.getMessage() == "greeting ada"
    assert (task_record.queue, task_record.attempt, task_record.step) == ("mail", 1, "hello")  # type: ignore[attr-defined]

    text = TextFormatter("%(levelname)s %(name)s: %(message)s").format(mine[3])
    assert text.startswith(f"INFO jobhandler.jobs: job completed job_id={job.id} task=greet")
    assert "queue=mail attempt=1 duration=" in text
    line = json.loads(JsonLineFormatter().format(mine[3]))
    assert line["message"] == "job completed" and line["level"] == "INFO"
    assert line["event"] == "completed" and line["job_id"] == job.id and line["queue"] == "mail"
    assert isinstance(line["duration"], float) and "time" in line and "pid" in line


def test_json_lines_redact_passwords_in_tracebacks() -> None:
    try:
        raise RuntimeError("cannot reach postgresql://app:hunter2@db/jobs")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonLineFormatter().format(record))
    assert "hunter2" not in line["exc_info"] and "RuntimeError" in line["exc_info"]
