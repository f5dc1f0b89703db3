"""The SQLite dialect: one file in WAL mode, shared safely by several processes on one host.

Calls run on one dedicated thread that owns the connection, so the event loop never waits on
the file: a unit of work (core.Step list) is one hop to that thread. The exception is a small
write that will not fsync and finds the write lock free: it runs on the loop's own thread,
where it takes less time than the hop would (sqlite_direct.py). Every write is a short
``BEGIN IMMEDIATE`` transaction: it takes the write lock up front, so a second writer waits on
``busy_timeout`` instead of failing with "database is locked" halfway through. No transaction
is ever held while a job runs. The operations themselves are in core.py.
"""

from __future__ import annotations

import asyncio
import functools
import json
import operator
import os
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal

from jobhandler.model.errors import StoreUnavailable
from jobhandler.store import migrations, queries
from jobhandler.store.core import StoreCore
from jobhandler.store.dialect import Done, Duplicate, Params, Refused, Step
from jobhandler.store.rows import COLUMN_WORDS, PageBudget, dumps
from jobhandler.store.sqlite.direct import MAX_ROWS, DirectWriter, rows_of
from jobhandler.store.sqlite.wakeup import WakeChannel
from jobhandler.store.uniqueness import KEY_WORDS

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

# WAL sizes in pages (SQLite's own autocheckpoint runs at 1,000): see SQLiteStore._checkpoint.
WAL_HOLD_FRAMES = 2000
WAL_RESTART_FRAMES = 8000

# The primary result codes that mean the database cannot be used now (locked past the busy
# timeout, the file cannot be opened or read, the disk is full), not that a statement is wrong.
_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_READONLY,
}


_dumps = dumps


def _loads(text: Any) -> Any:
    return json.loads(text)


def _same(sql: str) -> str:
    return sql  # sqlite3 binds :name itself


QUERIES = queries.load("sqlite", _same, {**COLUMN_WORDS, **KEY_WORDS, "skip_locked": ""})


def _translated(exc: sqlite3.Error) -> BaseException:
    """A driver error as the core's (see dialect.py): what ``_run`` raises instead."""
    if isinstance(exc, sqlite3.IntegrityError):
        if str(exc).startswith("UNIQUE constraint failed"):
            return Duplicate(f"sqlite: {exc}")
        return Refused(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.DataError):
        return Refused(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode & 0xFF in _UNAVAILABLE:
        return StoreUnavailable(f"sqlite: {exc}")
    return exc  # "no such table", a syntax error...: a bug, not an outage


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600), whatever the umask.

    SQLite itself creates files 0644 (it even chmods them so), and gives the -wal and -shm
    files the database file's mode: so a file made 0600 here keeps all three private. An
    existing file keeps the mode its owner gave it.
    """
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # no such directory, no permission...: sqlite3.connect reports it
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away; never added any
    finally:
        os.close(fd)


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
Values = Callable[[Params], tuple[Any, ...]]


@functools.cache
def _positional(text: str) -> tuple[str, Values]:
    """``:name`` parameters as ``?``, and the function that takes their values in that order:
    sqlite3 binds a tuple faster than it looks each name up, on every statement of a batch."""
    names = _NAMED.findall(text)
    if len(names) == 1:
        (name,) = names
        return _NAMED.sub("?", text), lambda params: (params[name],)
    getter = operator.itemgetter(*names) if names else lambda params: ()
    return _NAMED.sub("?", text), getter


@functools.cache
def _expanded(text: str, name: str, count: int) -> str:
    """``IN (:name)`` as ``IN (:name_0, :name_1, ...)``, for a list of ``count`` values."""
    marks = ", ".join(f":{name}_{i}" for i in range(count))
    return re.sub(rf":{name}\b", marks, text)


def _bound(text: str, params: Params) -> tuple[str, tuple[Any, ...]]:
    """The statement and its values. A list parameter (a claim's queues) becomes one parameter
    per value: SQLite plans with those where it would not look inside JSON (other lists are
    JSON text already)."""
    lists = [name for name, value in params.items() if type(value) is list]
    if lists:
        params = dict(params)
        for name in lists:
            values = params.pop(name)
            text = _expanded(text, name, len(values))
            params.update({f"{name}_{i}": v for i, v in enumerate(values)})
    positional, values_of = _positional(text)
    return positional, values_of(params)


@contextmanager
def _translating() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc


def _steps(conn: sqlite3.Connection, steps: Sequence[Step]) -> list[Done]:
    return [_step(conn, step) for step in steps]


def _step(conn: sqlite3.Connection, step: Step) -> Done:
    if not step.many:
        cur = conn.execute(*_bound(step.query.text, step.params))  # type: ignore[arg-type]
        found = cur.fetchall()  # before rowcount: RETURNING counts the rows as they are read
        return Done(found, [cur.rowcount])
    text, values_of = _positional(step.query.text)
    batch = map(values_of, step.params)  # type: ignore[arg-type]
    if step.each:
        return Done([], [conn.execute(text, values).rowcount for values in batch])
    return Done([], [conn.executemany(text, batch).rowcount])


class SQLiteStore(
    StoreCore, dialect="sqlite", queries=QUERIES, byte_length="length(CAST({} AS BLOB))"
):
    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 10.0,
        synchronous: Synchronous = "FULL",
        watch_interval: float = 0.05,
    ) -> None:
        self.path = path
        self.watch_interval = watch_interval
        self._wake = WakeChannel(path)
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobhandler-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._direct = DirectWriter(self._connect, _steps, synchronous)
        self._fsyncs = synchronous in ("FULL", "EXTRA")
        self._checkpointing: Future[None] | None = None
        self._hold_writes = False
        self._in_flight = 0  # calls on the thread, waited for by this process

    # -- what the core asks of a dialect ---------------------------------------------------

    _json = staticmethod(_dumps)
    _array = staticmethod(_dumps)  # read back with json_each
    _loads = staticmethod(_loads)
    _native = staticmethod(_same)

    def _accept(self, connection: object | None) -> None:
        if connection is not None:
            raise TypeError(
                "the SQLite store cannot submit inside a caller's transaction: the connection"
                " argument needs the PostgreSQL store"
            )

    async def _run(
        self, steps: Sequence[Step], write: bool, connection: object | None = None
    ) -> list[Done]:
        self._accept(connection)
        if write and self._direct_may_run(steps):
            with _translating():
                done = self._direct.run(steps)
            if done is not None:
                self._committed(steps)
                if self._direct.checkpoint_due():
                    self._checkpointing = self._executor.submit(self._checkpoint)  # not awaited
                return done
        found: list[Done] = await self._hop(self._work, steps, write)
        return found

    def _direct_may_run(self, steps: Sequence[Step]) -> bool:
        """Small, its commit will not wait for the disk (see sqlite_direct.py), not held back
        behind a checkpoint (``_checkpoint``), and the thread idle: under load the thread's
        statements run while the loop runs jobs, an overlap a write on the loop would take
        away (a drain ran at two thirds of the speed). This is for the lone write."""
        if self._in_flight:
            return False
        if self._fsyncs and not all(step.query.relaxed for step in steps):
            return False
        if self._hold_writes and self._checkpointing and not self._checkpointing.done():
            return False
        return rows_of(steps) <= MAX_ROWS

    async def _hop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the store's thread: the one way in to its connection."""
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        try:
            with _translating():
                return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self._in_flight -= 1

    def _work(self, steps: Sequence[Step], write: bool) -> list[Done]:
        conn = self._connection()
        if not write:
            return _steps(conn, steps)
        with self._write() as conn:
            done = _steps(conn, steps)
        self._committed(steps)
        return done

    def _committed(self, steps: Sequence[Step]) -> None:
        if any(step.query.wakes for step in steps):
            self._wake.send()  # committed: idle workers in other processes may claim it now

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database, so that the next write starts it over.

        PASSIVE: it waits for, and blocks, nobody. But the WAL starts over only at a write that
        finds it all copied, and a steady stream of writes during the copy keeps adding to it.
        So once the WAL has grown past WAL_HOLD_FRAMES, the next checkpoint holds this
        process's writes back (they wait on the thread, not on the loop) until it is done;
        past WAL_RESTART_FRAMES (other processes kept writing) a RESTART waits for them too.
        """
        conn = self._connection()
        ((_, frames, _),) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._hold_writes = frames > WAL_HOLD_FRAMES
        if frames > WAL_RESTART_FRAMES:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    async def _page_rows(self, sizes: str, params: Params, budget: PageBudget) -> list[Any]:
        def read() -> list[Any]:
            conn = self._connection()
            candidates = conn.execute(sizes, params)
            try:
                for row in candidates:  # stepped lazily: SQLite stops where the page does
                    if not budget.take(row):
                        break
            finally:
                candidates.close()  # ends its read snapshot now, not when it is collected
            seqs = {"seqs": _dumps(budget.seqs)}
            return conn.execute(self.queries["jobs_by_seq"].text, seqs).fetchall()

        found: list[Any] = await self._hop(read)
        return found

    # -- connection ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        """A connection set up as the store's thread uses it (the loop's own one changes its
        busy timeout and synchronous level after)."""
        _create_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        # The claim's sorts and unions use temporary b-trees; in a write transaction each one
        # was a temporary file opened and deleted (~0.4 ms a claim). They are small: in memory.
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def close(self) -> None:
        self._direct.close()

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._wake.close()

        await self._hop(close)
        self._executor.shutdown(wait=True)

    # -- schema ----------------------------------------------------------------------------

    async def migrate(self) -> None:
        await self._hop(self._migrate)

    def _migrate(self) -> None:
        # BEGIN IMMEDIATE: processes starting together migrate in turn, and each later one
        # finds the work done. One transaction for all: a failed migration leaves none applied.
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for migration in migrations.load(self.dialect):
                if migration.version <= current:
                    continue
                # executescript would commit our transaction; run the statements one by one.
                for statement in migrations.statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (migration.version,)
                )

    # -- wake-ups --------------------------------------------------------------------------

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        """Wake-ups across processes: a datagram from the committing process (wakeup.py),
        and, should one be lost, a thread that watches the file.

        The watch reads ``PRAGMA data_version`` (which changes when another connection commits,
        and costs no lock) every ``watch_interval`` seconds on its own connection, and calls
        ``on_submit`` when the newest job is newer than before. Cancels arrive through the
        worker's cancel poll instead.
        """
        loop = asyncio.get_running_loop()
        stopped = threading.Event()
        unbind = self._wake.listen(on_submit)

        def watch() -> None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            try:
                version = newest = -1
                while not stopped.wait(self.watch_interval):
                    seen = conn.execute("PRAGMA data_version").fetchone()[0]
                    if seen == version:
                        continue
                    version = seen
                    latest = conn.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
                    if latest > newest:
                        newest = latest
                        loop.call_soon_threadsafe(on_submit)
            except (sqlite3.Error, RuntimeError):  # the file went away, or the loop closed
                return
            finally:
                conn.close()

        watcher = threading.Thread(target=watch, name="jobhandler-sqlite-watch", daemon=True)
        watcher.start()

        async def stop() -> None:
            unbind()
            stopped.set()
            await asyncio.to_thread(watcher.join)

        return stop
