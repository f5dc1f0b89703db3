"""CPU per submitted job, in-process: what a submit costs this process, apart from the disk.

    .venv/bin/python bench/submit_cost.py [DATABASE_URL]     # default: a SQLite file in /tmp

Wall-clock rates swing with the machine's load; CPU time per job does much less, so this is
the figure to compare a change by (run it on the old and the new tree, interleaved: put the
old tree's src first on PYTHONPATH). It reports the best of 5 rounds of ``enqueue_many`` of
1,000 int payloads (bulk) and of 300 single ``enqueue`` calls, as microseconds of CPU per job
in the submitting thread, and on SQLite in the store's own thread too (the INSERTs, their
indexes and triggers). SQLite runs with synchronous OFF: the fsync is the disk's cost, which
the bare loops of bench/run.py measure.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from jobhandler import App
from jobhandler.settings import Settings
from jobhandler.store.sqlite import dialect as sqlite

app = App()


@app.task
async def noop(i: int) -> None:
    """The benchmark's task: an int payload, as every system in bench/run.py gets."""


class StoreThread:
    """CPU time spent in the SQLite store's thread, summed over its units of work."""

    seconds = 0.0

    @classmethod
    def install(cls) -> None:
        work = sqlite.SQLiteDialect._work

        def timed(self: Any, steps: Any, write: bool) -> Any:
            start = time.thread_time()
            try:
                return work(self, steps, write)
            finally:
                cls.seconds += time.thread_time() - start

        sqlite.SQLiteDialect._work = timed  # type: ignore[method-assign]


async def rounds(url: str, n_rounds: int = 5) -> dict[str, tuple[float, float]]:
    best: dict[str, tuple[float, float]] = {}
    async with app.connected(Settings(database_url=url, sqlite_synchronous="OFF")):
        await noop.enqueue_many(list(range(1000)))  # warm: connections, caches
        await noop.enqueue(0)
        for _ in range(n_rounds):
            for name, jobs, submit in (("bulk", 5000, _bulk), ("one", 300, _one)):
                StoreThread.seconds, start = 0.0, time.thread_time()
                await submit(jobs)
                mine = (time.thread_time() - start) / jobs * 1e6
                store = StoreThread.seconds / jobs * 1e6
                old = best.get(name, (mine, store))
                best[name] = (min(old[0], mine), min(old[1], store))
    return best


async def _bulk(jobs: int) -> None:
    for _ in range(jobs // 1000):
        await noop.enqueue_many(list(range(1000)))


async def _one(jobs: int) -> None:
    for i in range(jobs):
        await noop.enqueue(i)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("database_url", nargs="?", help="default: a SQLite file in /tmp")
    args = parser.parse_args()
    StoreThread.install()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'cost.db'}"
        for name, (mine, store) in asyncio.run(rounds(url)).items():
            extra = f", store thread {store:.1f}" if url.startswith("sqlite") else ""
            print(f"{name}: submitting thread {mine:.1f} us/job{extra}")


if __name__ == "__main__":
    main()
