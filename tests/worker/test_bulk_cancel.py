"""A bulk cancel of 100,000 jobs while a worker runs them: short batches, nothing left behind.

On SQLite, where one long write would stop every other writer: submits made while the bulk
cancel runs still go through at once. (Both stores run the same code; the store contract
tests the guards on each.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from jobhandler import App
from jobhandler.model.jobs import JobStatus
from jobhandler.model.records import JobFilter
from jobhandler.settings import Settings
from jobhandler.worker import Worker

JOBS = 100_000
CONCURRENCY = 20
NAP = 0.2  # seconds each job runs


async def test_bulk_cancel_of_100000_jobs_while_a_worker_runs(sqlite_url: str) -> None:
    app = App()

    @app.task
    async def nap(_: int) -> None:
        await asyncio.sleep(NAP)

    settings = Settings(
        database_url=sqlite_url,
        concurrency=CONCURRENCY,
        poll_interval=0.05,
        cancel_check_interval=0.05,
        shutdown_timeout=1,
    )
    async with app.connected(settings):
        started = time.monotonic()
        await nap.enqueue_many(list(range(JOBS)))
        print(f"enqueue_many of {JOBS} jobs: {time.monotonic() - started:.1f}s")
        worker = Worker(app, settings)
        run = asyncio.create_task(worker.run())
        try:
            await _wait(app, lambda counts: counts.get("processing", 0) > 0)
            began = time.monotonic()
            bulk = asyncio.create_task(app.service.jobs.bulk("cancel", JobFilter()))
            await asyncio.sleep(0)  # it has started: what is submitted from now on is not its
            latencies = []
            while not bulk.done():  # other writers keep going meanwhile
                started = time.monotonic()
                await nap.enqueue(-1, delay=3600)
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.05)
            count = (await bulk).count
            walked = time.monotonic() - began
            print(
                f"bulk cancel: {count} jobs in {walked:.1f}s,"
                f" submits meanwhile took at most {max(latencies) * 1000:.0f} ms"
            )
            await _wait(app, lambda c: not c.get("processing") and c.get("queued", 0) == 0)
        finally:
            worker.stop()
            await asyncio.wait_for(run, 10)
        counts = await _counts(app)
        done = await app.service.jobs.page(
            JobFilter(statuses=frozenset({JobStatus.COMPLETED})), 1000
        )
    assert counts.get("cancelled", 0) + counts.get("completed", 0) == JOBS
    # Every waiting job, and the running ones it flagged (some finished before they stopped).
    assert count == counts["cancelled"] + sum(job.cancel_requested for job in done.jobs)
    # Only the runs under way while the walk went on finished: at most a slot's worth of runs
    # per NAP while it lasted, and those it flagged (a bound from the walk's own duration, not
    # a speed assumed of the machine: how fast the walk is, bench/ measures).
    assert counts.get("completed", 0) <= CONCURRENCY * (walked / NAP + 2), (counts, walked)
    assert counts["scheduled"] == len(latencies) > 0  # submitted during the bulk: untouched
    assert max(latencies) < 2.0, max(latencies)


async def _counts(app: App) -> dict[str, int]:
    stats = await app.service.flow.queue_stats()
    return {status: n for s in stats for status, n in s.counts.items()}


async def _wait(app: App, done: Callable[[dict[str, int]], bool]) -> None:
    deadline = time.monotonic() + 30
    while not done(await _counts(app)):
        assert time.monotonic() < deadline, await _counts(app)
        await asyncio.sleep(0.05)
