"""What job events cost a worker: CPU per job drained in-process, with and without subscribers.

    .venv/bin/python bench/observe_cost.py [--jobs 4000] [--rounds 3]

One worker drains a SQLite store (synchronous=OFF, so the disk does not hide the difference) of
no-op jobs, three ways, alternating: ``none`` (no subscriber, no hook), ``default`` (what every
App has: the log subscriber below its level, the tracing hooks without a tracer provider) and
``metrics`` (plus Prometheus counters and histograms, as with ``--metrics-port`` or ``serve``).
Process CPU time per job, the least of the rounds (the machine's noise only adds).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from jobhandler import App, Settings
from jobhandler.observe import metrics
from jobhandler.observe.events import Events
from jobhandler.worker import Worker

WAYS = ("none", "default", "metrics")


async def drain(way: str, jobs: int) -> float:
    app = App()
    if way == "none":
        app.events = Events()
    elif way == "metrics":
        metrics.install(app)

    @app.task
    async def noop(i: int) -> None: ...

    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            database_url=f"sqlite:///{directory}/jobs.db",
            sqlite_synchronous="OFF",
            poll_interval=0.05,
        )
        async with app.connected(settings):
            await noop.enqueue_many(list(range(jobs)))
            worker = Worker(app, settings)
            cpu = time.process_time()
            run = asyncio.create_task(worker.run())
            # Polled: one cheap read per 20 ms, the same for every way (a subscriber would not be).
            while (await app.service.store.queue_stats())[0].counts.get("completed", 0) < jobs:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            cpu = time.process_time() - cpu
            worker.stop()
            await run
    return cpu / jobs * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    found: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            found[way].append(await drain(way, args.jobs))
    base = min(found["none"])
    for way, times in found.items():
        print(
            f"{way:8} {min(times):6.0f} us CPU per job ({min(times) / base - 1:+.0%});"
            f" rounds: {', '.join(f'{t:.0f}' for t in times)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
