"""Small writes that do not wait for the disk, run on the event loop's own thread.

A hop to the store's thread costs about 100 µs here (a thread wake-up each way), more than a
small write that does not fsync takes. So a unit of work that is small and whose commit will not
wait for the disk (the store runs ``synchronous=NORMAL`` or ``OFF``, or every statement is
``:relaxed``) runs right here, on a second connection, but only if it need not wait for
anything: the write lock is taken with no busy timeout, and if another connection holds it
the unit goes to the store's thread as before, where waiting blocks no loop.

This connection never checkpoints (``wal_autocheckpoint = 0``): a checkpoint copies the WAL
back into the database and fsyncs it, milliseconds the loop must not spend. The store's thread
runs a passive one instead every ``CHECKPOINT_EVERY`` commits made here, which other writers
do not wait for.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence

from jobhandler.store.dialect import Done, Step

# Larger units (a batch submit, a big claim) take long enough that the loop is better off
# waiting for the thread: the hop is small next to them.
MAX_ROWS = 32
# About what SQLite's own autocheckpoint would do (1,000 WAL pages) at ~10 pages a commit.
CHECKPOINT_EVERY = 100


def rows_of(steps: Sequence[Step]) -> int:
    return sum(len(step.params) if step.many else 1 for step in steps)


def _busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


class DirectWriter:
    """The loop thread's connection for small writes that do not fsync."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        run_steps: Callable[[sqlite3.Connection, Sequence[Step]], list[Done]],
        synchronous: str,
    ) -> None:
        self._connect = connect
        self._run_steps = run_steps
        # The store's level, but never one that fsyncs each commit.
        self._synchronous = synchronous if synchronous in ("OFF", "NORMAL") else "NORMAL"
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commits = 0

    def run(self, steps: Sequence[Step]) -> list[Done] | None:
        """The unit's results, committed; None if it would have had to wait (run it on the
        store's thread instead). Nothing is left written when it returns None or raises."""
        conn = self._connection()
        if conn is None:
            return None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            raise
        try:
            done = self._run_steps(conn, steps)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _busy(exc):
                return None
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._commits += 1
        return done

    def checkpoint_due(self) -> bool:
        """True once every ``CHECKPOINT_EVERY`` commits made here."""
        if self._commits < CHECKPOINT_EVERY:
            return False
        self._commits = 0
        return True

    def _connection(self) -> sqlite3.Connection | None:
        # One loop only: two loops' threads must not share one connection's transaction.
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            return None
        if self._conn is None:
            conn = self._connect()
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
