"""What only the SQLite store does: its CHECK migration, the migration splitter, and telling an
outage (a locked database) from a bug (a missing table)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobhandler.model.errors import DuplicateJob, StoreUnavailable
from jobhandler.model.jobs import JobStatus, NewJob
from jobhandler.store import migrations
from jobhandler.store.dialect import Refused, Step
from jobhandler.store.queries import Query
from jobhandler.store.sqlite.dialect import SQLiteStore
from jobhandler.store.sqlite.wakeup import WakeChannel

NOW = 1_900_000_000.0


def new_job(queue: str = "default") -> NewJob:
    return NewJob(str(uuid.uuid4()), "t", queue, {"n": 1}, 0, 3, None, NOW)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "jobs.db"))
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


def test_the_splitter_keeps_trigger_bodies_strings_and_comments_whole() -> None:
    script = """-- a comment; with a semicolon
CREATE TABLE a (b TEXT DEFAULT ';'); CREATE TABLE c (d TEXT);
CREATE TRIGGER t AFTER INSERT ON a BEGIN
    INSERT INTO c VALUES ('x;y'); -- inside; the body
    DELETE FROM a WHERE b = ';';
END;
-- trailing comment
"""
    found = migrations.statements(script)
    assert len(found) == 3
    assert found[2].startswith("CREATE TRIGGER") and found[2].endswith("END;")
    conn = sqlite3.connect(":memory:")
    for statement in found:
        conn.execute(statement)  # each is one whole statement
    conn.execute("INSERT INTO a VALUES ('z')")
    assert conn.execute("SELECT d FROM c").fetchall() == [("x;y",)]


def test_the_splitter_refuses_a_script_that_ends_inside_a_statement() -> None:
    with pytest.raises(ValueError, match="ends inside"):
        migrations.statements("CREATE TABLE a (b TEXT);\nCREATE TABLE c (d TEXT)")


async def test_the_check_migration_keeps_jobs_and_indexes(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for migration in migrations.load("sqlite"):
        if migration.version < 4:
            conn.executescript(migration.sql)
            conn.execute("INSERT INTO schema_version VALUES (?)", (migration.version,))
    kept = [new_job() for _ in range(3)]
    # Rows as that schema held them: written by hand, since today's statements know later columns.
    conn.executemany(
        "INSERT INTO jobs (id, task, queue, payload, priority, max_attempts, timeout, run_at,"
        " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (j.id, j.task, j.queue, '{"n":1}', 0, 3, None, NOW, status, NOW, NOW)
            for j, status in zip(kept, ["processing", "queued", "queued"], strict=True)
        ],
    )
    conn.close()
    before = SQLiteStore(path)
    try:
        await before.migrate()
        assert await before.schema_version() >= 4
        for job in kept:
            assert (await before.get_job(job.id)) is not None
        statuses = await before.job_statuses([j.id for j in kept])
        assert sorted(statuses.values()) == sorted(
            [JobStatus.PROCESSING, JobStatus.QUEUED, JobStatus.QUEUED]
        )
    finally:
        await before.close()
    conn = sqlite3.connect(path)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"jobs_due", "jobs_running_worker", "jobs_running_lease", "jobs_finished"} <= indexes
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE jobs SET status = 'lost'")


async def test_a_status_the_state_machine_does_not_know_is_refused(sqlite: SQLiteStore) -> None:
    job = new_job()
    await sqlite.insert_jobs([job], NOW)
    # No operation writes such a status; a unit of work made by hand stands for a bug that would.
    lost = Query("lose", "UPDATE jobs SET status = 'lost' WHERE id = :id")
    with pytest.raises(Refused, match="CHECK"):
        await sqlite.dialect.run([Step(lost, {"id": job.id})], write=True)
    assert (await sqlite.get_job(job.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]


async def test_a_duplicate_id_is_a_domain_error(sqlite: SQLiteStore) -> None:
    job = new_job()
    await sqlite.insert_jobs([job], NOW)
    with pytest.raises(DuplicateJob):
        await sqlite.insert_jobs([job], NOW)


async def test_a_locked_database_is_unavailable_and_a_missing_table_is_a_bug(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "jobs.db")
    store = SQLiteStore(path, busy_timeout=0.05)
    await store.migrate()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.insert_jobs([new_job()], NOW)
        holder.execute("ROLLBACK")
        await store.insert_jobs([new_job()], NOW)  # the lock is gone: it answers again
        holder.execute("DROP TABLE workers")
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await store.list_workers()  # not a 503 to retry for ever: a bug, shown as one
    finally:
        holder.close()
        await store.close()


async def test_a_commit_in_another_store_wakes_a_listener_by_datagram(tmp_path: Path) -> None:
    """The file watch is slowed to 60 s, so only the datagram can deliver this wake-up."""
    path = str(tmp_path / "shared.db")
    listener = SQLiteStore(path, watch_interval=60)
    submitter = SQLiteStore(path)
    await listener.migrate()
    woken = asyncio.Event()
    stop = await listener.listen(woken.set, lambda _id: None)
    try:
        for _ in range(3):
            woken.clear()
            started = time.perf_counter()
            await submitter.insert_jobs([new_job()], NOW)
            await asyncio.wait_for(woken.wait(), timeout=5)
            assert time.perf_counter() - started < 1.0
    finally:
        await stop()
        await listener.close()
    # A listener killed without cleaning up leaves its socket file: it is forgotten.
    folder = WakeChannel(path).folder
    folder.mkdir(parents=True, exist_ok=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(folder / "1-dead.sock"))
    dead.close()
    await submitter.insert_jobs([new_job()], NOW)
    assert not list(folder.glob("*.sock"))
    await submitter.close()
