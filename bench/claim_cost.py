"""Claim cost: claim+complete cycles on an (almost) empty jobs table, then on the same table
after it was filled with many finished jobs. Run by bench/run.py with the repo's interpreter:

    .venv/bin/python bench/claim_cost.py --database sqlite:///tmp/x.db --fill 1000000 --cycles 2000

One cycle is what a worker does for one job, through the store's own API: ``claim_jobs`` with
limit 1, then ``finish_jobs`` with one completed outcome. Each repetition first inserts
``--cycles`` queued jobs (untimed, ``insert_jobs`` in batches of 1,000) and then times the
cycles that take them. The empty phase runs first, on a fresh database, so its table holds only
the few thousand jobs the earlier repetitions finished.

The fill is one SQL statement, not a million API calls: a recursive CTE through Python's
sqlite3 module for SQLite, ``generate_series`` through psycopg for PostgreSQL (bench/ is not
product code, so it may write SQL). PostgreSQL then gets ``VACUUM ANALYZE jobs``, as autovacuum
would soon do after such an insert; SQLite gets nothing, as nothing runs ANALYZE there unasked.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import time
import uuid

from jobhandler.model.jobs import NewJob, Outcome, Transition
from jobhandler.settings import Settings
from jobhandler.store import open_store, sqlite_path
from jobhandler.store.contract import Store

COLUMNS = (
    "id, task, queue, payload, status, priority, attempt, max_attempts, run_at, created_at,"
    " updated_at, started_at, finished_at, result, worker_id"
)


def fill_sqlite(path: str, n: int, now: float) -> None:
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        with conn:
            conn.execute(
                f"INSERT INTO jobs ({COLUMNS})"
                " WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
                " SELECT 'fill-' || x, 'noop', 'default', '0', 'completed', 0, 1, 3,"
                " ? + x * 0.001, ? + x * 0.001, ? + x * 0.001, ? + x * 0.001, ? + x * 0.001,"
                " 'null', 'bench-fill' FROM c",
                (n, *[now - 86400] * 5),
            )
            # Rows written by hand are counted by hand (the store counts its own inserts).
            conn.execute(
                "INSERT INTO queue_counts (queue, completed) VALUES ('default', ?)"
                " ON CONFLICT (queue) DO UPDATE SET completed = completed + excluded.completed",
                (n,),
            )
    finally:
        conn.close()


def fill_postgres(url: str, n: int, now: float) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        start = now - 86400
        conn.execute(
            f"INSERT INTO jobs ({COLUMNS})"
            " SELECT 'fill-' || x, 'noop', 'default', '0'::jsonb, 'completed', 0, 1, 3,"
            " %(t)s + x * 0.001, %(t)s + x * 0.001, %(t)s + x * 0.001, %(t)s + x * 0.001,"
            " %(t)s + x * 0.001, 'null'::jsonb, 'bench-fill'"
            " FROM generate_series(1, %(n)s) AS x",
            {"t": start, "n": n},
        )
        conn.execute("VACUUM ANALYZE jobs")


async def insert_queued(store: Store, n: int) -> None:
    for first in range(0, n, 1000):
        now = time.time()
        batch = [
            NewJob(
                id=str(uuid.uuid4()),
                task="noop",
                queue="default",
                payload=i,
                priority=0,
                max_attempts=3,
                timeout=None,
                run_at=now,
            )
            for i in range(first, min(n, first + 1000))
        ]
        await store.insert_jobs(batch, now)


async def cycles(store: Store, n: int) -> float:
    """Claim+complete ``n`` jobs one at a time; cycles per second."""
    await insert_queued(store, n)
    worker = f"bench-claim-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    done = 0
    while done < n:
        jobs = await store.claim_jobs(["default"], worker, 1, time.time(), 30.0)
        if not jobs:
            raise SystemExit(f"claim_cost: the queue ran dry after {done} of {n} claims")
        (job,) = jobs
        applied = await store.finish_jobs(
            [Outcome(job.id, job.attempt, Transition.COMPLETE)], time.time()
        )
        if applied != [True]:
            raise SystemExit("claim_cost: a completion was not applied")
        done += 1
    return n / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True, help="sqlite:///PATH or postgresql:// URL")
    parser.add_argument("--fill", type=int, default=1_000_000)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    postgres = args.database.startswith(("postgresql://", "postgres://"))

    store = open_store(Settings(database_url=args.database))
    await store.migrate()
    try:
        empty = [await cycles(store, args.cycles) for _ in range(args.reps)]
        started = time.perf_counter()
        if postgres:
            fill_postgres(args.database, args.fill, time.time())
        else:
            fill_sqlite(sqlite_path(args.database), args.fill, time.time())
        fill_seconds = time.perf_counter() - started
        full = [await cycles(store, args.cycles) for _ in range(args.reps)]
    finally:
        await store.close()
    print(
        json.dumps(
            {
                "empty_cycles_per_s": empty,
                "full_cycles_per_s": full,
                "full_over_empty": [statistics.median(full) / statistics.median(empty)],
                "fill_rows": args.fill,
                "fill_seconds": fill_seconds,
                "cycles": args.cycles,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
