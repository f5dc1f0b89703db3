"""Submitting a job inside the caller's own transaction: it commits or rolls back with the
caller's other writes. PostgreSQL with an async or a blocking psycopg connection, SQLite with a
sqlite3 connection to the store's own file; any other connection is refused, storing nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobhandler import App
from jobhandler.model.jobs import JobStatus
from jobhandler.model.records import JobFilter
from jobhandler.settings import Settings
from jobhandler.store import sqlite_path

app = App()


@app.task
async def send_welcome(user: str) -> None:
    return None


async def test_a_rolled_back_submit_leaves_no_job_and_a_committed_one_runs(
    pg_database_url: str,
) -> None:
    async with (
        app.connected(Settings(database_url=pg_database_url)),
        await psycopg.AsyncConnection.connect(pg_database_url) as conn,
    ):
        await conn.execute("CREATE TABLE users (name text PRIMARY KEY)")
        await conn.commit()

        async with conn.transaction():
            await conn.execute("INSERT INTO users VALUES ('ann')")
            dropped = await send_welcome.enqueue("ann", connection=conn)
            raise psycopg.Rollback  # the signup fails: the welcome mail must not go either
        assert await app.service.store.get_job(dropped.id) is None

        async with conn.transaction():
            await conn.execute("INSERT INTO users VALUES ('bob')")
            kept = await send_welcome.enqueue("bob", connection=conn)
            assert await app.service.store.get_job(kept.id) is None  # not visible before the commit
        job = await app.service.store.get_job(kept.id)
        assert job is not None and job.status is JobStatus.QUEUED and job.payload == "bob"
        (claimed,) = await app.service.store.claim_jobs(["default"], "w1", 10, app.clock(), 30)
        assert claimed.id == kept.id


async def test_sqlite_refuses_a_psycopg_connection(sqlite_url: str, pg_database_url: str) -> None:
    async with (
        app.connected(Settings(database_url=sqlite_url)),
        await psycopg.AsyncConnection.connect(pg_database_url) as conn,
    ):
        with pytest.raises(TypeError, match=r"sqlite3\.Connection"):
            await send_welcome.enqueue("ann", connection=conn)
        assert await stored_jobs() == 0


async def stored_jobs() -> int:
    return await app.service.store.count_jobs(JobFilter(), 100)


async def test_a_blocking_psycopg_connection_joins_too(pg_database_url: str) -> None:
    async with app.connected(Settings(database_url=pg_database_url)):
        with psycopg.connect(pg_database_url) as conn:
            conn.execute("CREATE TABLE users (name text PRIMARY KEY)")
            conn.commit()
            with conn.transaction():
                conn.execute("INSERT INTO users VALUES ('ann')")
                await send_welcome.enqueue("ann", connection=conn)
                raise psycopg.Rollback
            assert await stored_jobs() == 0
            with conn.transaction():
                kept = await send_welcome.enqueue("bob", connection=conn)
                assert await app.service.store.get_job(kept.id) is None
            assert await app.service.store.get_job(kept.id) is not None


def test_enqueue_sync_joins_a_blocking_psycopg_transaction(pg_database_url: str) -> None:
    with (
        app.connected_sync(Settings(database_url=pg_database_url)),
        psycopg.connect(pg_database_url) as conn,
    ):
        with conn.transaction():
            send_welcome.enqueue_sync("ann", connection=conn)
            raise psycopg.Rollback
        assert app.run_sync(stored_jobs()) == 0
        with conn.transaction():
            kept = send_welcome.enqueue_sync("bob", connection=conn)
        job = app.run_sync(app.service.store.get_job(kept.id))
        assert job is not None and job.status is JobStatus.QUEUED


async def test_a_sqlite3_connection_to_the_store_file_joins(sqlite_url: str) -> None:
    async with app.connected(Settings(database_url=sqlite_url)):
        conn = sqlite3.connect(sqlite_path(sqlite_url))  # Python's default: implicit BEGIN
        try:
            conn.execute("CREATE TABLE users (name text PRIMARY KEY)")
            conn.execute("INSERT INTO users VALUES ('ann')")
            dropped = await send_welcome.enqueue("ann", connection=conn)
            conn.rollback()
            assert await app.service.store.get_job(dropped.id) is None
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
            with conn:  # commits at the end of the block
                kept = await send_welcome.enqueue("bob", connection=conn)
                conn.execute("INSERT INTO users VALUES ('bob')")
            job = await app.service.store.get_job(kept.id)
            assert job is not None and job.status is JobStatus.QUEUED and job.payload == "bob"
        finally:
            conn.close()


def test_enqueue_sync_joins_a_sqlite3_transaction(sqlite_url: str) -> None:
    with app.connected_sync(Settings(database_url=sqlite_url)):
        conn = sqlite3.connect(sqlite_path(sqlite_url), check_same_thread=False)
        try:
            send_welcome.enqueue_sync("ann", connection=conn)
            conn.rollback()
            assert app.run_sync(stored_jobs()) == 0
            with conn:
                kept = send_welcome.enqueue_sync("bob", connection=conn)
            assert app.run_sync(app.service.store.get_job(kept.id)) is not None
        finally:
            conn.close()
        # One that only its own thread may use cannot be written from the app's loop: said so.
        conn = sqlite3.connect(sqlite_path(sqlite_url))
        try:
            with pytest.raises(TypeError, match="check_same_thread=False"):
                send_welcome.enqueue_sync("cy", connection=conn)
        finally:
            conn.close()
        assert app.run_sync(stored_jobs()) == 1


async def test_sqlite_refuses_a_connection_to_another_file(sqlite_url: str, tmp_path: Path) -> None:
    async with app.connected(Settings(database_url=sqlite_url)):
        for other in (sqlite3.connect(tmp_path / "other.db"), sqlite3.connect(":memory:")):
            try:
                with pytest.raises(TypeError, match="not this store's file"):
                    await send_welcome.enqueue("ann", connection=other)
                assert not other.in_transaction, "something was begun on it"
            finally:
                other.close()
        assert await stored_jobs() == 0


async def test_postgres_refuses_a_connection_to_another_database(pg_database_url: str) -> None:
    other_url = pg_database_url.rsplit("/", 1)[0] + "/postgres"
    async with (
        app.connected(Settings(database_url=pg_database_url)),
        await psycopg.AsyncConnection.connect(other_url) as other,
    ):
        with pytest.raises(TypeError, match="not this store's"):
            await send_welcome.enqueue("ann", connection=other)
        conn = sqlite3.connect(":memory:")
        try:
            with pytest.raises(TypeError, match="psycopg"):
                await send_welcome.enqueue("ann", connection=conn)  # type: ignore[arg-type]
        finally:
            conn.close()
        assert await stored_jobs() == 0


async def test_postgres_refuses_what_is_not_a_psycopg_connection(pg_database_url: str) -> None:
    async with app.connected(Settings(database_url=pg_database_url)):
        with pytest.raises(TypeError, match="AsyncConnection"):
            await app.service.store.insert_jobs([], app.clock(), connection="not a connection")


async def test_a_unique_key_is_honoured_on_a_callers_connection(database_url: str) -> None:
    """The key's holder is read back by name, whatever rows the caller's connection makes."""
    async with app.connected(Settings(database_url=database_url)):
        if database_url.startswith("sqlite"):
            conn: Any = sqlite3.connect(sqlite_path(database_url))
        else:
            conn = psycopg.connect(database_url)  # tuples, not dicts
        try:
            first = await send_welcome.enqueue("ann", connection=conn, unique_key="ann")
            again = await send_welcome.enqueue("ann", connection=conn, unique_key="ann")
            conn.commit()
        finally:
            conn.close()
        assert again.duplicate and again.id == first.id
        assert await stored_jobs() == 1
