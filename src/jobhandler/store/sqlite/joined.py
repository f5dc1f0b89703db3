"""Writing inside a transaction that is not the store's own: a caller's ``sqlite3`` connection
to the store's file (``enqueue(..., connection=conn)``), or a task's ``ctx.transaction()``
(whose connection is tasktx.py's).

A caller's connection must be to the store's own file: a job written to another file would
be committed where no worker looks. Its statements run on it in the caller's thread, in its
transaction (one is begun, ``BEGIN IMMEDIATE``, if none is open), and are committed or rolled
back with it. Workers are woken by that commit through the store's file watch
(``wakeup.watch_file``: ``PRAGMA data_version`` changes at any connection's commit), which
every listening process runs already; no datagram can be sent at a commit we do not make.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from jobhandler.store.dialect import Done, Step
from jobhandler.store.sqlite.statements import run_steps, translating


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
