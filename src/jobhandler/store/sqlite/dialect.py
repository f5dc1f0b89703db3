"""The SQLite dialect: one file in WAL mode, shared safely by several processes on one host.

Calls run on one dedicated thread that owns the connection, so the event loop never waits on
the file: a unit of work (a list of dialect.Step) is one hop to that thread. The exception is a
small write that will not fsync and finds the write lock free: it runs on the loop's own thread,
where it takes less time than the hop would (direct.py). Every write is a short
``BEGIN IMMEDIATE`` transaction: it takes the write lock up front, so a second writer waits on
``busy_timeout`` instead of failing with "database is locked" halfway through. No transaction
is ever held while a job runs. How statements are bound is in statements.py; the operations
themselves are in the core (store/core.py), which ``SQLiteStore`` puts over this dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from typing import Any, Literal

from jobhandler.model.errors import DiskFull
from jobhandler.store import migrations, queries
from jobhandler.store.core import StoreCore
from jobhandler.store.dialect import Done, Params, Step
from jobhandler.store.rows import COLUMN_WORDS, PageBudget, dumps
from jobhandler.store.sqlite import joined
from jobhandler.store.sqlite.direct import MAX_ROWS, DirectWriter, _busy, rows_of
from jobhandler.store.sqlite.files import create_private
from jobhandler.store.sqlite.space import DiskSpace
from jobhandler.store.sqlite.statements import run_steps, translating
from jobhandler.store.sqlite.tasktx import TaskTransactions
from jobhandler.store.sqlite.wakeup import WakeChannel, watch_file
from jobhandler.store.uniqueness import KEY_WORDS

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

# WAL sizes in pages (SQLite's own autocheckpoint runs at 1,000): see SQLiteDialect._checkpoint.
WAL_HOLD_FRAMES = 2000
WAL_RESTART_FRAMES = 8000
# How often a writer tries again for the write lock another connection holds (_begin).
LOCK_POLL = 0.001


def _loads(text: Any) -> Any:
    return json.loads(text)


def _same(sql: str) -> str:
    return sql  # sqlite3 binds :name itself


QUERIES = queries.load("sqlite", _same, {**COLUMN_WORDS, **KEY_WORDS, "skip_locked": ""})


class SQLiteDialect:
    """The SQLite side of a store (dialect.Dialect): a file, its thread and its wake-ups."""

    name = "sqlite"
    queries = QUERIES
    byte_length = "length(CAST({} AS BLOB))"
    # Values as parameters: JSON as text, a list as JSON text (read back with json_each).
    json = staticmethod(dumps)
    array = staticmethod(dumps)
    loads = staticmethod(_loads)
    native = staticmethod(_same)

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 10.0,
        synchronous: Synchronous = "FULL",
        watch_interval: float = 0.05,
        reserve_bytes: int = 0,
    ) -> None:
        self.path = path
        self.watch_interval = watch_interval
        self._space = DiskSpace(path, reserve_bytes)  # a full disk (space.py)
        self._wake = WakeChannel(path)
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobhandler-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._level = synchronous  # the thread's connection's synchronous level now
        self._direct = DirectWriter(self._connect, run_steps, synchronous)
        self._fsyncs = synchronous in ("FULL", "EXTRA")
        self._checkpointing: Future[None] | None = None
        self._hold_writes = False
        self._in_flight = 0  # calls on the thread, waited for by this process
        self._tasks = TaskTransactions(self._connect, self._configure, self._begin, self._wake.send)

    def accept(self, connection: object | None) -> None:
        joined.accept(connection, self.path)

    async def run(
        self, steps: Sequence[Step], write: bool, connection: object | None = None
    ) -> list[Done]:
        if connection is not None:  # the caller's, in the caller's thread (joined.py)
            return self.run_sync(steps, connection)
        if write and self._space.low:  # healthy, this attribute is all the check costs
            self._space.refuse_growth(steps)
        try:
            if write and self._direct_may_run(steps):
                with translating():
                    done = self._direct.run(steps)
                if done is not None:
                    self._committed(steps, done)
                    if self._direct.checkpoint_due():
                        self._checkpointing = self._executor.submit(self._checkpoint)
                    return done
            found: list[Done] = await self._hop(self._work, steps, write)
            return found
        except DiskFull:
            if not write:
                raise
            return await self._after_full(steps)

    async def _after_full(self, steps: Sequence[Step]) -> list[Done]:
        """A write failed for want of disk: the low-space state frees the reserve (space.py).
        A unit that may run on a full disk (a cancel, an outcome) runs again in its room; any
        other is refused (DiskFull). Nothing of the failed attempt was committed."""
        await self._hop(self._ran_out)
        self._space.refuse_growth(steps)
        found: list[Done] = await self._hop(self._work, steps, True)
        return found

    def _ran_out(self) -> None:
        self._space.ran_out()
        # Copy the WAL back now, growing the file into the reserve's room if it must: the next
        # write then starts the WAL over in the room it has, rather than growing it.
        with contextlib.suppress(sqlite3.Error):
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @property
    def disk_full(self) -> bool:
        """True in the low-space state: new work is refused until the disk has room."""
        return self._space.low

    def run_sync(self, steps: Sequence[Step], connection: object) -> list[Done]:
        assert isinstance(connection, sqlite3.Connection)
        if self._space.low:
            self._space.refuse_growth(steps)
        try:
            return joined.run_joined(connection, steps)
        except DiskFull:
            self._space.ran_out()  # the caller's transaction is theirs to roll back
            raise

    def transaction(self) -> AbstractAsyncContextManager[sqlite3.Connection]:
        return self._tasks.transaction()  # one at a time per process (tasktx.py)

    def transaction_sync(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._tasks.transaction_sync()

    def skew(self) -> float:
        return 0.0  # one host: its clock is the only one

    def _direct_may_run(self, steps: Sequence[Step]) -> bool:
        """Small, its commit will not wait for the disk (see direct.py), not held back
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
            with translating():
                return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self._in_flight -= 1

    def _work(self, steps: Sequence[Step], write: bool) -> list[Done]:
        conn = self._connection()
        if not write:
            return run_steps(conn, steps)
        with self._write(all(step.query.relaxed for step in steps)) as conn:
            done = run_steps(conn, steps)
        self._committed(steps, done)
        return done

    def _committed(self, steps: Sequence[Step], done: Sequence[Done]) -> None:
        # A step that wrote or found nothing (a retry that matched no job, a wake-up check that
        # found no job due) has given nobody anything to claim.
        if any(s.query.wakes and _found(d) for s, d in zip(steps, done, strict=True)):
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

    async def page_rows(self, sizes: str, params: Params, budget: PageBudget) -> list[Any]:
        def read() -> list[Any]:
            conn = self._connection()
            candidates = conn.execute(sizes, params)
            try:
                for row in candidates:  # stepped lazily: SQLite stops where the page does
                    if not budget.take(row):
                        break
            finally:
                candidates.close()  # ends its read snapshot now, not when it is collected
            seqs = {"seqs": dumps(budget.seqs)}
            return conn.execute(self.queries["jobs_by_seq"].text, seqs).fetchall()

        found: list[Any] = await self._hop(read)
        return found

    # -- connection ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
            self._level = self._synchronous
            self._space.start()  # the file is open: make the reserve beside it, watch it
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        """As the store's thread uses it (the loop's changes its busy timeout and synchronous)."""
        create_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        self._configure(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        """Its settings, also put back on a task's connection after each transaction."""
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        # A workflow job cancelled because its parent failed settles its own dependents by the
        # same trigger (013_workflows.sql): triggers must fire from within triggers.
        conn.execute("PRAGMA recursive_triggers = ON")
        # The claim's sorts and unions use temporary b-trees; in a write transaction each one
        # was a temporary file opened and deleted (~0.4 ms a claim). They are small: in memory.
        conn.execute("PRAGMA temp_store = MEMORY")

    @contextmanager
    def _write(self, relaxed: bool = False) -> Iterator[sqlite3.Connection]:
        # Relaxed: no fsync, as on the direct path (a durable commit or checkpoint does it).
        conn = self._connection()
        level = "NORMAL" if relaxed and self._fsyncs else self._synchronous
        if level != self._level:
            conn.execute(f"PRAGMA synchronous = {level}")  # outside a transaction only
            self._level = level
        self._begin(conn)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT too. SQLite may have rolled back already (a full disk, an I/O
            # error): a ROLLBACK then would fail, and hide why.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, waiting for another writer by polling: 0.1 ms, up to LOCK_POLL.

        SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20 ms... between tries: a writer
        that found the lock taken slept on for up to 25 ms after it came free, and with two
        processes writing that was most of a job's pickup and of a fan-in's last step."""
        conn.execute("PRAGMA busy_timeout = 0")
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        pause = 0.0001
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _busy(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(pause)
                pause = min(2 * pause, LOCK_POLL)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")

    async def close(self) -> None:
        self._direct.close()
        self._tasks.close()

        def close() -> None:
            self._space.stop()
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
            for migration in migrations.load(self.name):
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
        and, should one be lost, a thread that watches the file (``wakeup.watch_file``).
        Cancels arrive through the worker's cancel poll instead."""
        unbind = self._wake.listen(on_submit)
        stop_watch = watch_file(self.path, self._busy_timeout_ms, self.watch_interval, on_submit)

        async def stop() -> None:
            unbind()
            await stop_watch()

        return stop


class SQLiteStore(StoreCore):
    """The store on a SQLite file: the core (core.py) over a :class:`SQLiteDialect`.
    ``reserve_bytes``: the disk reserve kept beside the file (space.py); 0 keeps none."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 10.0,
        synchronous: Synchronous = "FULL",
        watch_interval: float = 0.05,
        reserve_bytes: int = 0,
    ) -> None:
        self.path = path
        self._sqlite = SQLiteDialect(
            path,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            watch_interval=watch_interval,
            reserve_bytes=reserve_bytes,
        )
        super().__init__(self._sqlite)

    def disk_full(self) -> bool:
        return self._sqlite.disk_full


def _found(done: Done) -> bool:
    return bool(done.rows) or any(n > 0 for n in done.counts)
