"""Speed with a large store: fill a store with N jobs, then time what the dashboard and an
operator read (GET /queues, GET /jobs pages, /metrics, the dashboard's pages) against a real
``jobhandler serve --no-worker``. Run with the repo's interpreter:

    .venv/bin/python bench/large_store.py --database sqlite:////tmp/large.db --jobs 1000000
    .venv/bin/python bench/large_store.py --database postgresql://postgres@127.0.0.1/jh_large

The fill goes through the store's own bulk import (``Store.import_jobs``, batches of 5,000), so
the counters and indexes are kept as they are in use: jobs spread over 5 queues and 7 tasks,
most finished over the last day (completed, failed, cancelled), some queued, scheduled and
processing. A store that already holds N jobs is not filled again (``--fill 0`` skips it).
PostgreSQL then gets ``VACUUM ANALYZE``, as autovacuum would soon do.

Each URL is read once to warm up, then ``--repeat`` times; the median and the slowest are
printed, in milliseconds, with one JSON line at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from jobhandler.model.jobs import Job, JobStatus
from jobhandler.settings import Settings
from jobhandler.store import open_store

BATCH = 5000
BUDGET_MS = 300.0
STATUSES = (  # of every 20 jobs
    [JobStatus.COMPLETED] * 15
    + [JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED, JobStatus.SCHEDULED]
    + [JobStatus.PROCESSING]
)


def make_job(n: int, total: int, now: float) -> Job:
    status = STATUSES[n % len(STATUSES)]
    created = now - 86400 + n * 86400 / total  # spread over the last day, the chart's hour too
    finished = created + 1 if status.terminal else None
    return Job(
        id=str(uuid.UUID(int=n + 1)),
        task=f"task{n % 7}",
        queue=f"queue{n % 5}",
        payload={"n": n, "text": "x" * 40},
        status=status,
        priority=n % 3,
        attempt=0 if status in (JobStatus.QUEUED, JobStatus.SCHEDULED) else 1,
        max_attempts=3,
        uncounted=0,
        timeout=None,
        run_at=created + (7200 if status is JobStatus.SCHEDULED else 0),
        created_at=created,
        updated_at=finished or created,
        started_at=None if status in (JobStatus.QUEUED, JobStatus.SCHEDULED) else created,
        finished_at=finished,
        result={"ok": True} if status is JobStatus.COMPLETED else None,
        error="boom" if status is JobStatus.FAILED else None,
        worker_id="bench" if status is not JobStatus.QUEUED else None,
        lease_expires_at=now + 3600 if status is JobStatus.PROCESSING else None,
    )


async def fill(url: str, n: int) -> float:
    store = open_store(Settings(database_url=url))
    await store.migrate()
    try:
        have = sum(sum(q.counts.values()) for q in await store.queue_stats())
        started = time.perf_counter()
        now = time.time()
        for first in range(have, n, BATCH):
            batch = range(first, min(first + BATCH, n))
            await store.import_jobs([make_job(i, n, now) for i in batch])
            if first // BATCH % 20 == 0:
                print(f"  filled {first + BATCH:,} of {n:,}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - started
        await store.queue_stats()  # folds the counters' deltas (PostgreSQL) before the vacuum
        return seconds
    finally:
        await store.close()


def vacuum(url: str) -> None:
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def time_urls(base: str, paths: list[str], repeat: int) -> dict[str, dict[str, float]]:
    found = {}
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as http:
        for path in paths:
            response = http.get(path)  # warm-up; and it must answer
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                http.get(path).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
            found[path] = {"median_ms": statistics.median(times), "max_ms": max(times)}
    return found


def serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBHANDLER_")}
    env["JOBHANDLER_DATABASE_URL"] = url
    command = [str(Path(sys.executable).with_name("jobhandler")), "serve", "--no-worker"]
    proc = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="sqlite:///path or postgresql://...")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    seconds = asyncio.run(fill(args.database, args.jobs))
    vacuum(args.database)
    paths = [
        "/queues",
        "/jobs?limit=50",
        "/jobs?limit=50&status=failed",
        "/jobs?limit=50&queue=queue3",
        "/jobs?limit=50&task=task4&status=completed",
        "/workers",
        "/metrics",
        "/ui/",
        "/ui/jobs",
        "/ui/jobs?status=failed",
        "/ui/queues",
        "/ui/workers",
        "/ui/tasks",
        "/ui/schedules",
        f"/ui/jobs/{uuid.UUID(int=1000)}",
        # An operator's searches and bulk confirmations (the id prefix: all jobs share the
        # first, 65,536 the second, 16 the third; "zzz" is in no payload or error).
        "/ui/jobs?id=00000000",
        "/ui/jobs?id=00000000-0000-0000-0000-0000000f",
        "/ui/jobs?id=00000000-0000-0000-0000-0000000f424",
        "/ui/jobs?q=boom",
        "/ui/jobs?q=zzz",
        "/ui/jobs?q=boom&status=failed&queue=queue0",
        "/ui/jobs?q=zzz&task=task3",
        "/ui/bulk/retry?status=failed&queue=queue0",
        "/ui/bulk/retry",
        "/ui/bulk/retry?task=task3",
        "/ui/bulk/delete?task=task3&status=completed",
        "/ui/bulk/retry?q=boom",
        "/ui/bulk/retry?id=00000000-0000-0000-0000-0000000f",
        f"/jobs/{uuid.UUID(int=1000)}/attempts",
    ]
    proc, base = serve(args.database)
    try:
        found = time_urls(base, paths, args.repeat)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{args.jobs:,} jobs in {args.database.split(':')[0]} (filled in {seconds:.0f} s)")
    for path, t in found.items():
        flag = "" if t["max_ms"] < BUDGET_MS else "  OVER BUDGET"
        print(f"  {path:<48} median {t['median_ms']:7.1f} ms  max {t['max_ms']:7.1f} ms{flag}")
    print(json.dumps({"database": args.database, "jobs": args.jobs, "urls": found}))


if __name__ == "__main__":
    main()
