"""Submitting a job inside the caller's own PostgreSQL transaction: it commits or rolls back
with the caller's other writes."""

from __future__ import annotations

import psycopg
import pytest

from jobhandler import App
from jobhandler.model.jobs import JobStatus
from jobhandler.settings import Settings

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


async def test_sqlite_refuses_a_connection(sqlite_url: str, pg_database_url: str) -> None:
    async with (
        app.connected(Settings(database_url=sqlite_url)),
        await psycopg.AsyncConnection.connect(pg_database_url) as conn,
    ):
        with pytest.raises(TypeError, match="SQLite"):
            await send_welcome.enqueue("ann", connection=conn)


async def test_postgres_refuses_what_is_not_a_psycopg_connection(pg_database_url: str) -> None:
    async with app.connected(Settings(database_url=pg_database_url)):
        with pytest.raises(TypeError, match="AsyncConnection"):
            await app.service.store.insert_jobs([], app.clock(), connection="not a connection")
