"""Latency of a trivial isolation="process" job: submit to completed, one at a time.

    .venv/bin/python bench/process_latency.py [N]

Runs an in-process worker on a throwaway SQLite file with the demo app's ``crunch`` task
(0 seconds of work), so what is measured is the runner: starting (or reusing) a child process.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jobhandler import Settings
from jobhandler.demo import app
from jobhandler.worker import Worker


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            app="jobhandler.demo:app",
            poll_interval=0.05,
        )
        async with app.connected(settings):
            worker = Worker(app, settings)
            run = asyncio.create_task(worker.run())
            crunch = app.tasks.get("crunch")
            times = []
            for _ in range(n + 1):
                started = time.perf_counter()
                job = await crunch.enqueue(0.0)
                done = await app.service.jobs.wait(job.id, 30)
                assert done.status.value == "completed", done
                times.append(time.perf_counter() - started)
            worker.stop()
            await run
    first, rest = times[0], sorted(times[1:])
    print(
        f"first job {first * 1000:.1f} ms; next {n}: median {statistics.median(rest) * 1000:.1f}"
        f" ms, p90 {rest[int(len(rest) * 0.9) - 1] * 1000:.1f} ms, max {rest[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
