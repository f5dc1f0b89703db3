"""Tasks with isolation="process" run in a child Python process that can be hard-stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from jobhandler import App, JobStatus, Settings
from jobhandler.demo import app as demo_app
from jobhandler.worker import Worker


@pytest.fixture
async def demo(sqlite_url: str) -> AsyncIterator[App]:
    settings = Settings(
        database_url=sqlite_url,
        app="jobhandler.demo:app",
        poll_interval=0.05,
        cancel_check_interval=0.05,
        thread_cancel_grace=0.5,
    )
    async with demo_app.connected(settings):
        worker = Worker(demo_app, settings)
        run = asyncio.create_task(worker.run())
        yield demo_app
        worker.stop()
        await asyncio.wait_for(run, 10)


async def test_process_task_returns_its_result(demo: App) -> None:
    job = await demo.tasks.get("crunch").enqueue(0.05)
    done = await demo.service.jobs.wait(job.id, 20)
    assert done.status is JobStatus.COMPLETED
    assert isinstance(done.result, int) and done.result > 0


async def test_process_task_timeout_kills_the_child(demo: App) -> None:
    job = await demo.tasks.get("crunch").enqueue(60.0, timeout=0.5, max_attempts=1)
    started = time.monotonic()
    done = await demo.service.jobs.wait(job.id, 20)
    assert done.status is JobStatus.FAILED and done.error == "timed out after 0.5 s"
    assert time.monotonic() - started < 10


async def test_process_task_cancel_kills_the_child(demo: App) -> None:
    job = await demo.tasks.get("crunch").enqueue(60.0)
    deadline = time.monotonic() + 20
    while (await demo.service.jobs.get(job.id)).status is not JobStatus.PROCESSING:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    asked = time.monotonic()
    cancelled = await demo.service.jobs.cancel(job.id, wait=5)
    assert cancelled.status is JobStatus.CANCELLED
    assert time.monotonic() - asked < 2
