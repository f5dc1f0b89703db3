"""The connections of tasks' ``ctx.transaction()``: two pools of their own (async tasks', and
thread tasks' blocking ones), apart from the store's pool.

Apart, because a task may hold its transaction a while, and the store's pool is what the
worker's claims and heartbeats need meanwhile: they never wait behind a task. Pooled, because a
new session per transaction (a backend forked, authenticated) cost milliseconds each, most of
a short transaction. Each pool holds at most ``size`` connections (the ``task_connections``
setting), opened as tasks first need them and kept while they are used; a task that finds them
all in use waits its turn (the pool serves waiters in order) for up to ``WAIT`` seconds.

A connection goes back clean: the transaction ended (committed or rolled back, as the block
did), then ``RESET`` undoes whatever a task left on the session (a ``SET``, a temporary table,
an advisory lock, an open cursor, a LISTEN), and the row factory is put back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jobhandler.store.postgres.wire import check_idle, input_waiting, unavailable

# Seconds a task waits for a connection when all are in use: long enough to queue behind other
# tasks' transactions, bounded so that a database that is gone fails the run (StoreUnavailable,
# retried by its policy) instead of hanging it.
WAIT = 60.0
# An idle connection is closed after this long, down to none: a worker whose transactional
# tasks have stopped coming holds no sessions for them.
MAX_IDLE = 60.0


# DISCARD ALL but for DEALLOCATE ALL (and DISCARD PLANS): psycopg prepares a statement that a
# connection runs often (prepare_threshold), and keeps doing so across tasks, so the task whose
# INSERT is the same every time runs it prepared. One round trip (several statements, no
# parameters: the simple query protocol).
RESET = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *;"
    " SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)


async def _reset(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(RESET)
    conn.row_factory = tuple_row


def _reset_sync(conn: psycopg.Connection[Any]) -> None:
    conn.execute(RESET)
    conn.row_factory = tuple_row


def _check_idle_sync(conn: psycopg.Connection[Any]) -> None:
    """``wire.check_idle`` for a blocking connection."""
    if input_waiting(conn):
        ConnectionPool.check_connection(conn)


class TaskConnections:
    """The two pools of one store, each opened at its first use and closed with the store."""

    def __init__(self, url: str, size: int, connect_args: dict[str, Any]) -> None:
        common: dict[str, Any] = {
            "kwargs": {"autocommit": True, **connect_args},
            "min_size": 0,
            "max_size": size,
            "timeout": WAIT,
            "max_idle": MAX_IDLE,
            "open": False,
        }
        self._async = AsyncConnectionPool(
            url,
            connection_class=psycopg.AsyncConnection[Any],
            check=check_idle,
            reset=_reset,
            name="jobhandler-tasks",
            **common,
        )
        self._sync = ConnectionPool(
            url,
            connection_class=psycopg.Connection[Any],
            check=_check_idle_sync,
            reset=_reset_sync,
            name="jobhandler-task-threads",
            **common,
        )
        self._async_opened = False
        self._sync_opened = False
        self._opening = threading.Lock()  # thread tasks may be the first two at once

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        with unavailable():
            if not self._async_opened:
                await self._async.open()  # on the running loop, which the pool belongs to
                self._async_opened = True
            conn = await self._async.getconn()
        try:
            # The block's errors, and the commit's, reach the task as psycopg raised them.
            async with conn.transaction():
                yield conn
        finally:
            await self._async.putconn(conn)  # reset there (or closed if it is broken)

    @contextmanager
    def transaction_sync(self) -> Iterator[psycopg.Connection[Any]]:
        with unavailable():
            with self._opening:
                if not self._sync_opened:
                    self._sync.open()
                    self._sync_opened = True
            conn = self._sync.getconn()
        try:
            with conn.transaction():
                yield conn
        finally:
            self._sync.putconn(conn)

    async def close(self) -> None:
        if self._async_opened:
            await self._async.close()
        if self._sync_opened:
            await asyncio.to_thread(self._sync.close)  # it joins its worker threads
