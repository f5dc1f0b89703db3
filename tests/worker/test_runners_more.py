"""Runners as a user sees them: warm, recycled process children; the blocked-loop watchdog; a
thread's timeout that cannot kill the thread, said on the job."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from jobhandler import App, Job, JobStatus, Settings
from jobhandler.worker import Worker
from tests.apps.runnerapp import app as runner_app
from tests.conftest import wait_until


@pytest.fixture
def run_worker(sqlite_url: str) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[App]:
        settings = Settings(
            database_url=sqlite_url,
            app="tests.apps.runnerapp:app",
            poll_interval=0.05,
            cancel_check_interval=0.05,
            thread_cancel_grace=0.1,
            **overrides,
        )
        async with runner_app.connected(settings):
            worker = Worker(runner_app, settings)
            run = asyncio.create_task(worker.run())
            try:
                yield runner_app
            finally:
                worker.stop()
                await asyncio.wait_for(run, 10)

    return start


async def run_job(app: App, task: str, payload: Any, **options: Any) -> Job:
    job = await app.tasks.get(task).enqueue(payload, **options)
    return await app.service.jobs.wait(job.id, 20)


async def test_a_warm_child_runs_job_after_job_until_it_is_recycled(run_worker: Any) -> None:
    async with run_worker(process_concurrency=1, process_max_jobs=3) as app:
        pids = [(await run_job(app, "pid", 0.0)).result for _ in range(5)]
    assert pids[0] == pids[1] == pids[2], "one warm child runs the first three jobs"
    assert pids[3] == pids[4] != pids[0], "then it is replaced by a fresh one"


async def test_what_a_process_task_prints_or_reads_cannot_garble_the_channel(
    run_worker: Any,
) -> None:
    async with run_worker(process_concurrency=1) as app:
        noisy = await run_job(app, "noisy", None)
        after = await run_job(app, "pid", 0.0)
    assert noisy.status is JobStatus.COMPLETED and noisy.result == ""
    assert after.status is JobStatus.COMPLETED


async def test_children_are_shared_by_concurrent_jobs_and_stop_with_the_worker(
    run_worker: Any,
) -> None:
    async with run_worker(process_concurrency=2, concurrency=8) as app:
        handles = [await app.tasks.get("pid").enqueue(0.2) for _ in range(6)]
        done = [await app.service.jobs.wait(h.id, 20) for h in handles]
    assert {j.status for j in done} == {JobStatus.COMPLETED}
    pids = {j.result for j in done}
    assert 1 <= len(pids) <= 2, "never more children than process_concurrency"
    await asyncio.to_thread(wait_until, lambda: not any(map(_alive, pids)), 5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_child_killed_on_timeout_or_lost_is_replaced(run_worker: Any) -> None:
    async with run_worker(process_concurrency=1) as app:
        first = (await run_job(app, "pid", 0.0)).result
        timed_out = await run_job(app, "pid", 30.0, timeout=0.3)
        assert timed_out.status is JobStatus.FAILED
        assert timed_out.error == "timed out after 0.3 s"
        died = await run_job(app, "child_exits", None)
        assert died.status is JobStatus.FAILED
        assert died.error == "task process exited with code 3 before reporting"
        after = await run_job(app, "pid", 0.0)
    assert after.status is JobStatus.COMPLETED and after.result != first


async def test_the_watchdog_names_an_async_task_that_blocks_the_loop(
    run_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "jobhandler.watchdog")
    async with run_worker(loop_block_threshold=0.2) as app:
        job = await run_job(app, "blocks_loop", 0.8, timeout=0.3)
    warnings = [r.getMessage() for r in caplog.records if r.name == "jobhandler.watchdog"]
    assert any(
        "blocked for" in m and f"task 'blocks_loop' (job {job.id})" in m and "runnerapp.py" in m
        for m in warnings
    ), warnings
    assert any("event loop ran again after" in m for m in warnings), warnings
    # It overran its timeout without awaiting: timed out all the same, and the error says why.
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.startswith("timed out after 0.3 s; the task blocked")


async def test_a_thread_past_its_timeout_is_said_to_be_still_running(
    run_worker: Any, tmp_path: Path
) -> None:
    side_effect = tmp_path / "late.txt"
    async with run_worker() as app:
        job = await run_job(app, "slow_write", str(side_effect), timeout=0.1)
        assert job.status is JobStatus.FAILED
        assert job.error is not None and "could not be stopped" in job.error
        assert "may still be running" in job.error
        # ... and it was: the side effect lands after the job was settled.
        await asyncio.to_thread(wait_until, side_effect.exists, 5)
