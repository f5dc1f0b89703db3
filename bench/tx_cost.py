"""The cost of one task transaction (``store.transaction()``, what ``ctx.transaction()`` opens):
one row inserted in a table of the store's database, then the commit, through the store's API.

    .venv/bin/python bench/tx_cost.py --database sqlite:////tmp/x.db --n 1000

Nothing else runs in the process (an idle worker's): ``sequential`` times N transactions one
after another (median and 90th percentile wall time each, and this process's CPU time per
transaction: the PostgreSQL server's is not in it), ``blocking`` the same through
``transaction_sync()`` from a thread, ``concurrent`` N transactions 16 at a time (their rate).
Run it on a copy of src/ (``PYTHONPATH=/other/src``) for a before/after. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

from jobhandler.settings import Settings
from jobhandler.store import open_store
from jobhandler.store.contract import Store

TABLE = "CREATE TABLE IF NOT EXISTS bench_tx (n INTEGER NOT NULL)"
AT_ONCE = 16


def insert_sql(conn: Any) -> str:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    return f"INSERT INTO bench_tx (n) VALUES ({mark})"


async def one(store: Store, n: int) -> None:
    async with store.transaction() as conn:
        done = conn.execute(insert_sql(conn), (n,))
        if asyncio.iscoroutine(done):
            await done


def one_blocking(store: Store, n: int) -> None:
    with store.transaction_sync() as conn:
        conn.execute(insert_sql(conn), (n,))


def summary(walls: list[float], cpu: float) -> dict[str, float]:
    walls.sort()
    return {
        "median_ms": round(statistics.median(walls) * 1000, 3),
        "p90_ms": round(walls[int(len(walls) * 0.9)] * 1000, 3),
        "cpu_ms_per_tx": round(cpu / len(walls) * 1000, 3),
    }


async def timed(n: int, run: Callable[[int], Any]) -> dict[str, float]:
    walls: list[float] = []
    cpu = time.process_time()
    for i in range(n):
        started = time.perf_counter()
        await run(i)
        walls.append(time.perf_counter() - started)
    return summary(walls, time.process_time() - cpu)


async def measure(url: str, n: int) -> dict[str, Any]:
    store = open_store(Settings(database_url=url))
    await store.migrate()
    try:
        async with store.transaction() as conn:
            done = conn.execute(TABLE)
            if asyncio.iscoroutine(done):
                await done
        for i in range(20):  # warm: connections opened, statements prepared
            await one(store, i)
        sequential = await timed(n, lambda i: one(store, i))
        blocking = await timed(n, lambda i: asyncio.to_thread(one_blocking, store, i))
        slots = asyncio.Semaphore(AT_ONCE)

        async def bounded(i: int) -> None:
            async with slots:
                await one(store, i)

        started = time.perf_counter()
        await asyncio.gather(*(bounded(i) for i in range(n)))
        rate = n / (time.perf_counter() - started)
    finally:
        await store.close()
    return {
        "database": url.split(":")[0],
        "n": n,
        "sequential": sequential,
        "blocking": blocking,
        f"concurrent_{AT_ONCE}_tx_per_s": round(rate, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.database, args.n))))


if __name__ == "__main__":
    main()
