"""Writing inside a transaction that is not the store's own: a caller's ``sqlite3`` connection
to the store's file (``enqueue(..., connection=conn)``), or a task's ``ctx.transaction()``.

A caller's connection must be to the store's own file: a job written to another file would
be committed where no worker looks. Its statements run on it in the caller's thread, in its
transaction (one is begun, ``BEGIN IMMEDIATE``, if none is open), and are committed or rolled
back with it. Workers are woken by that commit through the store's file watch
(``wakeup.watch_file``: ``PRAGMA data_version`` changes at any connection's commit), which
every listening process runs already; no datagram can be sent at a commit we do not make.

A task's transaction is a connection of its own, opened as the store's thread opens its, with
the write lock taken up front: its ``BEGIN IMMEDIATE`` (which may wait on the busy timeout) and
its ``COMMIT`` (which may fsync) run on a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from jobhandler.store.dialect import Done, Step
from jobhandler.store.sqlite.statements import run_steps, translating

T = TypeVar("T")


def main_file(conn: sqlite3.Connection) -> str:
    """The file of a connection's main database ('' for an in-memory one)."""
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(file or "")
    return ""


def accept(connection: object | None, path: str) -> None:
    """Raise TypeError unless ``connection`` is a sqlite3 connection to the file at ``path``."""
    if connection is None:
        return
    if not isinstance(connection, sqlite3.Connection):
        raise TypeError(
            "connection must be a sqlite3.Connection to this store's file,"
            f" not {type(connection).__name__}"
        )
    try:
        theirs = main_file(connection)
    except sqlite3.ProgrammingError as exc:  # closed, or another thread's
        raise TypeError(
            f"connection cannot be used here ({exc}); from a *_sync call, open it with"
            " check_same_thread=False: the app's loop thread writes on it while you wait"
        ) from None
    if not theirs or not os.path.exists(path) or not os.path.samefile(theirs, path):
        raise TypeError(
            f"connection is to {theirs or 'an in-memory database'!r}, not this store's file"
            f" {path!r}: a job written there would never run"
        )


def run_joined(connection: sqlite3.Connection, steps: Sequence[Step]) -> list[Done]:
    """The statements on the caller's connection, in its transaction (begun if none is open):
    theirs to commit or roll back. Rows are read as the store reads them, whatever the
    caller's own row factory."""
    if not connection.in_transaction:
        connection.execute("BEGIN IMMEDIATE")
    connection.execute("PRAGMA recursive_triggers = ON")  # as the store's own (dialect.py)
    saved, connection.row_factory = connection.row_factory, sqlite3.Row
    try:
        with translating():
            return run_steps(connection, steps)
    finally:
        connection.row_factory = saved


@asynccontextmanager
async def own_transaction(
    connect: Callable[[], sqlite3.Connection], committed: Callable[[], None]
) -> AsyncIterator[sqlite3.Connection]:
    """A new connection in a ``BEGIN IMMEDIATE`` transaction, committed when the block ends
    (then ``committed()``), rolled back if it raises; closed either way.

    Its BEGIN and COMMIT run on a thread of its own, not the loop's shared pool: tasks waiting
    to begin could fill that pool, and the one holding the lock would wait behind them for a
    thread to commit on until their busy timeouts ran out.
    """
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobhandler-transaction")
    opened: list[sqlite3.Connection] = []

    def begin() -> sqlite3.Connection:
        opened.append(connect())
        _begin(opened[0])
        return opened[0]

    try:
        conn = await _waited(own, begin)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        await _waited(own, conn.execute, "COMMIT")
    finally:
        for conn in opened:
            _close(conn)  # a ROLLBACK first if still open (a stop or a failed commit)
        own.shutdown(wait=False)
    committed()


async def _waited(own: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """``fn`` on the transaction's thread. A stop meanwhile waits for it to end (it begins or
    commits the transaction: its outcome decides what to close), then goes on."""
    work = asyncio.get_running_loop().run_in_executor(own, fn, *args)
    try:
        with translating():
            return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


@contextmanager
def own_transaction_sync(
    connect: Callable[[], sqlite3.Connection], committed: Callable[[], None]
) -> Iterator[sqlite3.Connection]:
    conn = connect()
    try:
        _begin(conn)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        _close(conn)
    committed()


def _begin(conn: sqlite3.Connection) -> None:
    with translating():
        conn.execute("BEGIN IMMEDIATE")


def _close(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # a commit that failed
        conn.execute("ROLLBACK")
    conn.close()
