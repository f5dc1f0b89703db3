"""What a one-job commit costs SQLite itself: WAL frames and CPU, by index and by count statement.

    .venv/bin/python bench/commit_pages.py

On a freshly migrated store file holding 100,000 jobs, 300 commits of one job each (BEGIN
IMMEDIATE, the store's own INSERT, a count, COMMIT) with ``synchronous=OFF`` (the disk is left
out) and no checkpoint, so the WAL's frame count over the commits is the pages they wrote. The
same with some listing indexes dropped (a copy of the file each time), and a bare two-column
table (the bare loop of bench/run.py) for comparison. CPU is this thread's, µs per commit.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from jobhandler.model.jobs import new_job_id
from jobhandler.settings import Settings
from jobhandler.store import open_store
from jobhandler.store.sqlite.dialect import QUERIES
from jobhandler.store.sqlite.statements import positional

INSERT, VALUES = positional(QUERIES["insert_jobs"].text)
COUNTS = {
    "count by id": (QUERIES["count_inserted"].text, lambda job_id: {"ids": json.dumps([job_id])}),
    "count from values": (
        QUERIES["count_added"].text,
        lambda job_id: {"queue": "default", "queued": 1, "scheduled": 0, "waiting": 0},
    ),
}
LISTING = ["jobs_status_seq", "jobs_queue_seq", "jobs_task_seq", "jobs_updated"]
COMMITS = 300


def params(i: int) -> dict[str, object]:
    now = time.time()
    return {
        "id": new_job_id(),
        **{"task": "noop", "queue": "default", "payload": str(i), "priority": 0},
        **{"max_attempts": 3, "timeout": None, "run_at": now, "unique_key": None},
        **{"unique_until": None, "trace_context": None, "concurrency_key": None},
        **{"status": "queued", "created_at": now, "updated_at": now},
    }


def open_wal(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def measure(conn: sqlite3.Connection, commit: object) -> tuple[float, float]:
    """Frames and CPU µs per commit of ``commit(i)``, from an emptied WAL."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    start = time.thread_time()
    for i in range(COMMITS):
        conn.execute("BEGIN IMMEDIATE")
        commit(i)  # type: ignore[operator]
        conn.execute("COMMIT")
    cpu = (time.thread_time() - start) / COMMITS * 1e6
    frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    return frames / COMMITS, cpu


def jobs_rows(template: Path, work: Path, dropped: list[str]) -> None:
    for count, (sql, count_params) in COUNTS.items():
        shutil.copy(template, work)
        conn = open_wal(work)
        for index in dropped:
            conn.execute(f"DROP INDEX {index}")

        def commit(
            i: int,
            conn: sqlite3.Connection = conn,
            sql: str = sql,
            count_params: object = count_params,
        ) -> None:
            row = params(i)
            conn.execute(INSERT, VALUES(row))
            conn.execute(sql, count_params(row["id"]))  # type: ignore[operator]

        frames, cpu = measure(conn, commit)
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)
        without = f", without {', '.join(dropped)}" if dropped else ""
        print(f"jobs, {count}{without}: {frames:.1f} frames, {cpu:.1f} µs CPU per commit")


def bare(path: Path) -> None:
    conn = open_wal(path)
    conn.execute("CREATE TABLE bare (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO bare VALUES (?, ?)", ((i, '{"i": 1}') for i in range(100_000)))
    conn.execute("COMMIT")

    def commit(i: int) -> None:
        conn.execute("INSERT INTO bare VALUES (?, ?)", (100_000 + i, '{"i": 1}'))

    frames, cpu = measure(conn, commit)
    print(f"bare table: {frames:.1f} frames, {cpu:.1f} µs CPU per commit")
    conn.close()


async def migrated(path: Path) -> None:
    store = open_store(Settings(database_url=f"sqlite:///{path}"))
    try:
        await store.migrate()
    finally:
        await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(INSERT, (VALUES(params(i)) for i in range(100_000)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        asyncio.run(migrated(template))
        for dropped in ([], ["jobs_updated"], LISTING):
            jobs_rows(template, Path(tmp) / "work.db", dropped)
        bare(Path(tmp) / "bare.db")


if __name__ == "__main__":
    main()
