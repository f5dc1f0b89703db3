"""The worker in this process, on real stores: results, errors, retries, timeouts, cancel."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pydantic import BaseModel

from jobhandler import (
    App,
    InvalidOptions,
    InvalidPayload,
    Job,
    JobContext,
    JobStatus,
    PermanentFailure,
    RetryLater,
    RetryPolicy,
    Settings,
)
from jobhandler.model.jobs import NewJob
from jobhandler.worker import Worker

FAST_RETRY = RetryPolicy(base=0.01, max_delay=0.05, jitter=0)


class Order(BaseModel):
    item: str
    qty: int


def build_app() -> App:
    app = App()

    @app.task
    async def total(order: Order) -> dict[str, int]:
        return {order.item: order.qty * 2}

    @app.task
    def blocking_upper(text: str) -> str:
        time.sleep(0.01)
        return text.upper()

    @app.task(max_attempts=3, retry=FAST_RETRY)
    async def always_fails(_: None) -> None:
        raise ValueError("nope")

    @app.task(max_attempts=5)
    async def asks_to_retry(_: None, ctx: JobContext) -> int:
        if ctx.attempt < 3:
            raise RetryLater(0.01)
        return ctx.attempt

    @app.task(max_attempts=5)
    async def gives_up(_: None) -> None:
        raise PermanentFailure("bad input, do not retry")

    @app.task(timeout=0.2, max_attempts=2, retry=FAST_RETRY)
    async def async_slow(_: None) -> None:
        await asyncio.sleep(30)

    @app.task(timeout=0.2, max_attempts=1)
    def thread_slow(_: None, ctx: JobContext) -> str:
        ctx.wait_cancelled(30)
        return "stopped"

    @app.task
    async def waits_forever(_: None, ctx: JobContext) -> None:
        ctx.progress({"step": 1})
        await asyncio.sleep(60)

    @app.task
    def thread_waits(_: None, ctx: JobContext) -> bool:
        return ctx.wait_cancelled(60)

    return app


@asynccontextmanager
async def running(database_url: str, **overrides: object) -> AsyncIterator[App]:
    app = build_app()
    fast = {
        "poll_interval": 0.05,
        "heartbeat_interval": 0.2,
        "cancel_check_interval": 0.05,
        "rescue_interval": 0.2,
        "thread_cancel_grace": 0.2,
        "shutdown_timeout": 1,
    }
    settings = Settings.model_validate({"database_url": database_url, **fast, **overrides})
    async with app.connected(settings):
        worker = Worker(app, settings)
        run = asyncio.create_task(worker.run())
        try:
            yield app
        finally:
            worker.stop()
            await asyncio.wait_for(run, 10)


async def submit_and_wait(app: App, task: str, payload: object = None, timeout: float = 10) -> Job:
    job = await app.tasks.get(task).enqueue(payload)
    return await app.service.jobs.wait(job.id, timeout)


async def test_async_and_thread_tasks_complete_with_typed_payloads(database_url: str) -> None:
    async with running(database_url) as app:
        done = await submit_and_wait(app, "total", Order(item="tea", qty=2))
        assert done.status is JobStatus.COMPLETED and done.result == {"tea": 4}
        upper = await submit_and_wait(app, "blocking_upper", "abc")
        assert upper.result == "ABC" and upper.attempt == 1


async def test_many_jobs_all_complete(database_url: str) -> None:
    async with running(database_url, concurrency=8) as app:
        task = app.tasks.get("blocking_upper")
        jobs = [await task.enqueue(f"j{i}") for i in range(60)]
        finished = [await app.service.jobs.wait(j.id, 20) for j in jobs]
        assert [j.result for j in finished] == [f"J{i}" for i in range(60)]


async def test_failures_are_retried_then_fail_with_traceback(database_url: str) -> None:
    async with running(database_url) as app:
        failed = await submit_and_wait(app, "always_fails")
        assert failed.status is JobStatus.FAILED and failed.attempt == 3
        assert failed.error == "ValueError: nope"
        assert failed.traceback is not None and "raise ValueError" in failed.traceback


async def test_retry_later_and_permanent_failure(database_url: str) -> None:
    async with running(database_url) as app:
        retried = await submit_and_wait(app, "asks_to_retry")
        assert retried.status is JobStatus.COMPLETED and retried.result == 3
        given_up = await submit_and_wait(app, "gives_up")
        assert given_up.status is JobStatus.FAILED and given_up.attempt == 1
        assert given_up.error == "bad input, do not retry"


async def test_timeouts_fail_async_and_thread_runs(database_url: str) -> None:
    async with running(database_url) as app:
        started = time.monotonic()
        slow = await submit_and_wait(app, "async_slow")
        assert slow.status is JobStatus.FAILED and slow.attempt == 2
        assert slow.error == "timed out after 0.2 s"
        assert time.monotonic() - started < 5
        thread = await submit_and_wait(app, "thread_slow")
        assert thread.status is JobStatus.FAILED and thread.error == "timed out after 0.2 s"


async def test_cancel_stops_async_and_thread_runs(database_url: str) -> None:
    async with running(database_url) as app:
        async_job = await app.tasks.get("waits_forever").enqueue(None)
        thread_job = await app.tasks.get("thread_waits").enqueue(None)
        for job in (async_job, thread_job):
            await _until(app, job.id, lambda j: j.status is JobStatus.PROCESSING)
        progressed = await _until(app, async_job.id, lambda j: j.progress == {"step": 1})
        assert progressed.status is JobStatus.PROCESSING
        for job in (async_job, thread_job):
            cancelled = await app.service.jobs.cancel(job.id, wait=5)
            assert cancelled.status is JobStatus.CANCELLED


async def test_cancel_queued_job_never_runs(database_url: str) -> None:
    async with running(database_url) as app:
        job = await app.tasks.get("total").enqueue(Order(item="x", qty=1), delay=0.3)
        assert job.status is JobStatus.SCHEDULED
        cancelled = await app.service.jobs.cancel(job.id)
        assert cancelled.status is JobStatus.CANCELLED
        later = await app.service.jobs.wait(job.id, 0.6)
        assert later.status is JobStatus.CANCELLED and later.attempt == 0


async def test_unknown_task_in_the_store_fails_without_importing(database_url: str) -> None:
    async with running(database_url) as app:
        stray = NewJob(
            id=str(uuid.uuid4()),
            task="os.system",
            queue="default",
            payload="rm -rf /",
            priority=0,
            max_attempts=3,
            timeout=None,
            run_at=app.clock(),
        )
        await app.service.store.insert_jobs([stray], app.clock())
        failed = await app.service.jobs.wait(stray.id, 10)
        assert failed.status is JobStatus.FAILED and failed.attempt == 1
        assert failed.error == "unknown task 'os.system'"


async def _until(app: App, job_id: str, check: object, timeout: float = 10) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = await app.service.jobs.get(job_id)
        if check(job):  # type: ignore[operator]
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job never matched: {job}")
        await asyncio.sleep(0.02)


async def test_graceful_stop_releases_running_jobs(database_url: str) -> None:
    async with running(database_url, shutdown_timeout=0.2) as app:
        job = await app.tasks.get("waits_forever").enqueue(None)
        await _until(app, job.id, lambda j: j.status is JobStatus.PROCESSING)
        job_id = job.id
    async with app.connected(Settings(database_url=database_url)):
        released = await app.service.jobs.get(job_id)
        (run,) = await app.service.jobs.attempts(job_id)
    assert released.status is JobStatus.QUEUED
    assert released.attempt == 1 and released.attempts_used == 0
    assert released.interrupted == 1 and run.outcome == "interrupted"


async def test_finished_jobs_are_pruned_after_their_retention(database_url: str) -> None:
    async with running(
        database_url, keep_completed=0.2, keep_failed=3600, prune_interval=0.1
    ) as app:
        done = await submit_and_wait(app, "blocking_upper", "x")
        failed = await submit_and_wait(app, "gives_up")
        assert done.status is JobStatus.COMPLETED and failed.status is JobStatus.FAILED
        deadline = time.monotonic() + 10
        while await app.service.store.get_job(done.id) is not None:
            assert time.monotonic() < deadline, "the completed job was never pruned"
            await asyncio.sleep(0.05)
        assert (await app.service.jobs.get(failed.id)).status is JobStatus.FAILED  # kept longer


async def test_enqueue_many_is_checked_in_one_pass_and_all_or_nothing(database_url: str) -> None:
    async with running(database_url) as app:
        task = app.tasks.get("total")
        with pytest.raises(InvalidPayload) as caught:
            await task.enqueue_many([{"item": "a", "qty": 1}, {"item": "b", "qty": "many"}])
        assert caught.value.errors[0]["loc"] == ["jobs", 1, "payload", "qty"]
        assert (await app.service.jobs.page()).jobs == []
        jobs = await task.enqueue_many([Order(item=f"i{n}", qty=n) for n in range(50)], priority=3)
        assert all(j.priority == 3 and j.task == "total" for j in jobs)
        done = [await app.service.jobs.wait(j.id, 20) for j in jobs]
        assert [j.result for j in done] == [{f"i{n}": 2 * n} for n in range(50)]


async def test_enqueue_options_are_checked(database_url: str) -> None:
    async with running(database_url) as app:
        task = app.tasks.get("total")
        with pytest.raises(InvalidOptions):
            await task.enqueue(Order(item="x", qty=1), max_attempts=0)
        with pytest.raises(InvalidOptions):
            await task.enqueue(Order(item="x", qty=1), delay=1, run_at=time.time())
        assert (await app.service.jobs.page()).jobs == []
