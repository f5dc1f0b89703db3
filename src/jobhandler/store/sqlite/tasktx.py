"""Tasks' ``ctx.transaction()`` on SQLite: one at a time per process, in the order they asked.

SQLite has one writer, and a task's transaction takes the write lock up front (``BEGIN
IMMEDIATE``): two of them are never open at once anywhere. So a process keeps one connection
for its tasks' transactions, and its tasks queue for it in the process: async tasks on an
``asyncio.Lock`` (first come, first served), then each in turn, with thread tasks, on a
``threading.Lock`` (the ``gate``), held for the whole transaction. Only the holder of the gate
waits for the file's write lock, against other processes and this store's own thread, by the
store's polling BEGIN (dialect.py ``_begin``) bounded by the busy timeout. Before, every task
polled the lock through SQLite's busy handler, whose growing sleeps served them in no order:
under load some waited out the busy timeout ("database is locked") while others went by.

An async task's BEGIN and COMMIT (which may wait on the lock, or fsync) run on a thread of
this process's task transactions, never on the event loop; tasks waiting their turn wait on
the lock, not on that thread, so the holder always finds it free to commit on.

After each transaction the connection is put back as it was opened (its PRAGMAs and row
factory, ``configure``), in case the task changed them; one that fails at that, or that the
task closed, is replaced by a new one at the next transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager

from jobhandler.model.errors import StoreUnavailable
from jobhandler.store.sqlite.statements import translating

Connect = Callable[[], sqlite3.Connection]
Configure = Callable[[sqlite3.Connection], None]
Begin = Callable[[sqlite3.Connection], None]
# Seconds a thread task waits for its turn in this process (async tasks wait on the asyncio
# lock, as long as their own timeout lets them): behind other tasks' transactions, so longer
# than the busy timeout, which bounds only the wait for other processes.
TURN_WAIT = 60.0


class TaskTransactions:
    """The task transactions of one process on one file (``SQLiteDialect.transaction``)."""

    def __init__(
        self,
        connect: Connect,
        configure: Configure,
        begin: Begin,
        committed: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._configure = configure
        self._begin = begin  # BEGIN IMMEDIATE, waiting for other writers up to the busy timeout
        self._committed = committed
        self._gate = threading.Lock()
        self._turn = asyncio.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobhandler-tx")
        self._conn: sqlite3.Connection | None = None  # kept between transactions

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[sqlite3.Connection]:
        async with self._turn:
            conn = await self._enter_off_loop()
            try:
                yield conn
                await self._off_loop(conn.execute, "COMMIT")
            finally:
                self._leave(conn)  # a ROLLBACK first if still open (an error, a stop)
        self._committed()

    @contextmanager
    def transaction_sync(self) -> Iterator[sqlite3.Connection]:
        conn = self._enter()
        try:
            yield conn
            with translating():
                conn.execute("COMMIT")
        finally:
            self._leave(conn)
        self._committed()

    def close(self) -> None:
        # Not waited for: a thread task let go at shutdown may still hold its transaction;
        # its connection then closes with the process.
        if self._gate.acquire(blocking=False):
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._gate.release()
        self._thread.shutdown(wait=False)

    def _enter(self) -> sqlite3.Connection:
        """This process's turn (the gate), then the file's write lock; the gate is let go
        if the lock could not be had."""
        if not self._gate.acquire(timeout=TURN_WAIT):
            raise StoreUnavailable(
                f"sqlite: no turn for a task's transaction in {TURN_WAIT:g} s: this process's"
                " other tasks held theirs"
            )
        try:
            with translating():
                if self._conn is None:
                    self._conn = self._connect()
                self._begin(self._conn)
                return self._conn
        except BaseException:
            self._gate.release()
            raise

    def _enter_at_once(self) -> sqlite3.Connection | None:
        """The turn and the write lock if both are free right now: taken on the loop, where
        that costs less than the hop to the thread. None if either would have to wait."""
        conn = self._conn
        if conn is None or not self._gate.acquire(blocking=False):
            return None
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("BEGIN IMMEDIATE")
            return conn
        except sqlite3.Error:
            self._leave(conn)  # puts its busy timeout back, lets the gate go
            return None

    async def _enter_off_loop(self) -> sqlite3.Connection:
        at_once = self._enter_at_once()
        if at_once is not None:
            return at_once
        work = asyncio.get_running_loop().run_in_executor(self._thread, self._enter)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # A stop while it waited for the lock: let it end, and give back what it got.
            await asyncio.wait([work])
            if not work.cancelled() and work.exception() is None:
                self._leave(work.result())
            raise

    async def _off_loop(self, fn: Callable[[str], object], sql: str) -> None:
        """``fn(sql)`` on the thread. A stop meanwhile waits for it to end (it commits: its
        outcome decides what is left to roll back), then goes on."""
        work = asyncio.get_running_loop().run_in_executor(self._thread, fn, sql)
        try:
            with translating():
                await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait([work])
            raise

    def _leave(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:  # the block raised, or its commit failed
                conn.execute("ROLLBACK")
            self._configure(conn)
        except sqlite3.Error:  # the task closed it, or it broke: a new one next time
            self._conn = None
            conn.close()
        finally:
            self._gate.release()
