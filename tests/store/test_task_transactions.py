"""The connections of tasks' transactions (``store.transaction()``): many at once in one process
all commit, and a connection serves the next transaction clean, whatever the last one did
(store/postgres/tasktx.py, store/sqlite/tasktx.py). Real SQLite files and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from jobhandler import Settings
from jobhandler.store import Store, open_store
from jobhandler.store.postgres.dialect import PostgresStore
from jobhandler.store.sqlite.dialect import SQLiteStore
from tests.store.test_transaction_contract import TABLE, effects, placeholder, write


async def session(conn: Any) -> object:
    """What tells one connection from another: the object (SQLite), the backend (PostgreSQL)."""
    if isinstance(conn, sqlite3.Connection):
        return id(conn)
    cur = await conn.execute("SELECT pg_backend_pid()")
    return (await cur.fetchone())[0]


async def test_many_transactions_at_once_in_one_process_all_commit(store: Store) -> None:
    async with store.transaction() as conn:
        await write(conn, TABLE)

    async def one(i: int) -> None:
        async with store.transaction() as conn:
            await write(conn, "INSERT INTO effects VALUES (?)", f"async-{i}")
            await asyncio.sleep(0.002)  # held open a while: the others must queue

    def one_in_a_thread(i: int) -> None:
        with store.transaction_sync() as conn:
            conn.execute(f"INSERT INTO effects VALUES ({placeholder(conn)})", (f"thread-{i}",))
            time.sleep(0.002)

    started = time.monotonic()
    await asyncio.gather(
        *(one(i) for i in range(60)), *(asyncio.to_thread(one_in_a_thread, i) for i in range(20))
    )
    elapsed = time.monotonic() - started
    expected = [f"async-{i}" for i in range(60)] + [f"thread-{i}" for i in range(20)]
    assert sorted(await effects(store)) == sorted(expected), "each row exactly once"
    assert elapsed < 10, f"{elapsed:.1f} s: a transaction waited out a lock"


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Store]:
    """A store whose tasks share one connection (PostgreSQL: a pool of one for each form)."""
    opened = open_store(Settings(database_url=database_url, task_connections=1))
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_block_that_raises_rolls_back_and_its_connection_serves_the_next(
    one_connection: Store,
) -> None:
    store = one_connection
    async with store.transaction() as conn:
        await write(conn, TABLE)
        first = await session(conn)
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            await write(conn, "INSERT INTO effects VALUES (?)", "rolled back")
            raise RuntimeError("the task failed")

    def in_a_thread() -> None:
        with store.transaction_sync() as conn:
            conn.execute(f"INSERT INTO effects VALUES ({placeholder(conn)})", ("rolled back",))
            raise RuntimeError("the thread task failed")

    with pytest.raises(RuntimeError):
        await asyncio.to_thread(in_a_thread)
    async with store.transaction() as conn:
        assert await session(conn) == first, "a new connection instead of the pooled one"
        await write(conn, "INSERT INTO effects VALUES (?)", "committed")
    assert await effects(store) == ["committed"]


@pytest.fixture
async def pg_store(pg_database_url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(pg_database_url, task_connections=1)  # one: every task reuses it
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def test_postgres_what_a_task_left_on_its_session_is_gone_for_the_next(
    pg_store: PostgresStore,
) -> None:
    async with pg_store.transaction() as conn:
        first = await session(conn)
        await conn.execute("SET work_mem = '77MB'")
        await conn.execute("CREATE TEMP TABLE leftover (x int)")
        await conn.execute("SELECT pg_advisory_lock(42)")
        conn.row_factory = dict_row
    # One that ended in error: a statement failed and the block went on (and ended).
    with contextlib.suppress(psycopg.Error):
        async with pg_store.transaction() as conn:
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                await conn.execute("SELECT * FROM no_such_table")
    async with pg_store.transaction() as conn:
        assert await session(conn) == first
        cur = await conn.execute(
            "SELECT current_setting('work_mem'), to_regclass('pg_temp.leftover'),"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid())"
        )
        row = await cur.fetchone()
        assert row is not None and row[0] != "77MB" and row[1] is None and row[2] == 0, row


async def test_postgres_the_worker_never_waits_behind_tasks_for_a_connection(
    pg_database_url: str,
) -> None:
    """Every task connection held, and then some tasks waiting: the store's own work (a claim)
    still has its pool, and the waiting task gets a connection when one comes back."""
    store = PostgresStore(pg_database_url, max_size=1, task_connections=1)
    await store.migrate()
    try:
        async with store.transaction() as conn:
            held = await session(conn)
            waiting = asyncio.create_task(waiter(store))
            await asyncio.sleep(0)
            async with asyncio.timeout(5):
                assert await store.claim_jobs(["default"], "w1", 1, 1.0, 30.0) == []
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 10) == held, "not the pooled connection"
    finally:
        await store.close()


async def waiter(store: Store) -> object:
    async with store.transaction() as conn:
        return await session(conn)


async def test_postgres_a_thread_tasks_session_setting_is_gone_for_the_next(
    pg_store: PostgresStore,
) -> None:
    def set_it() -> int:
        with pg_store.transaction_sync() as conn:
            conn.execute("SET statement_timeout = 1234")
            return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])

    def read_it() -> tuple[int, str]:
        with pg_store.transaction_sync() as conn:
            cur = conn.execute("SELECT pg_backend_pid(), current_setting('statement_timeout')")
            pid, timeout = cur.fetchone()
            return int(pid), str(timeout)

    pid = await asyncio.to_thread(set_it)
    assert await asyncio.to_thread(read_it) == (pid, "0")


async def test_sqlite_a_tasks_changes_to_its_connection_are_undone(tmp_path: Any) -> None:
    store = SQLiteStore(str(tmp_path / "jobs.db"))
    await store.migrate()
    try:
        async with store.transaction() as conn:
            first = id(conn)
            conn.row_factory = None
            conn.execute("PRAGMA recursive_triggers = OFF")  # the store's triggers need it on
        with pytest.raises(sqlite3.ProgrammingError):  # its commit, on a closed connection
            async with store.transaction() as conn:
                assert id(conn) == first and conn.row_factory is sqlite3.Row
                assert conn.execute("PRAGMA recursive_triggers").fetchone()[0] == 1
                conn.close()  # the task closed it: the next transaction gets a new one
        async with store.transaction() as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
    finally:
        await store.close()
