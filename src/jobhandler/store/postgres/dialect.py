"""The PostgreSQL store: many processes on many hosts coordinate through one database.

psycopg 3 async with a connection pool in autocommit mode: a single statement is its own
transaction, so the claim (``FOR UPDATE SKIP LOCKED`` in a CTE, then ``UPDATE ... RETURNING``)
commits at once and no lock outlives the round trip. A unit of work of several statements is
one pipeline, one round trip, and one transaction (wire.py sends it). Connection failures
and pool timeouts surface as ``StoreUnavailable``. The operations themselves are in the core
(store/core.py), which ``PostgresStore`` puts over this dialect.

Durability per write. A submit, a user's action and every other write commit only once their
WAL is on disk, but a relaxed unit (``Query.relaxed``: claims, heartbeats, outcomes,
progress) commits with ``synchronous_commit`` off, for its own transaction only: a crash of
the database or its host may lose the last such commits (up to three ``wal_writer_delay``),
which puts jobs back where a crash of the worker would have left them, to run again. The
database stays consistent, and a commit that waited for the disk keeps all before it.

Time. Rows keep the domain's float seconds since the epoch in ``double precision`` columns, and
callers pass ``now`` as they do to the SQLite store, so tests own the clock and both stores hold
the same numbers. But a time is written by one host and judged by another: a job's ``run_at``
by the API server, against a worker's clock when it claims; a lease by its worker, against the
rescuer's. So each new pooled connection measures how far this host's clock is from
``clock_timestamp()`` (``skew``, in whole seconds, see ``skew_of``), and a connected App reads
its host's clock plus that skew (model/clock.py): every host passes times on the database's
timeline. On hosts kept in sync (and in tests, which run beside the database) the skew is zero
and the numbers are exactly the host's.

Wake-ups. ``insert_jobs`` and ``retry_job`` NOTIFY ``jobhandler_jobs`` (one notification per
transaction, and PostgreSQL folds identical ones together), ``request_cancel`` of a processing
job NOTIFYs ``jobhandler_cancel`` with the job id. ``listen`` holds one dedicated connection
outside the pool for LISTEN (listener.py). With ``listen=False`` (PgBouncer in transaction mode
cannot hold a LISTEN) it delivers nothing; NOTIFY itself still goes out, as it passes through
such poolers.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
)
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from jobhandler.model.clock import skew_of
from jobhandler.model.errors import StoreUnavailable
from jobhandler.settings import TASK_CONNECTIONS
from jobhandler.store import migrations, queries
from jobhandler.store.core import StoreCore
from jobhandler.store.dialect import Done, Params, Step
from jobhandler.store.postgres.listener import CANCEL_CHANNEL, SUBMIT_CHANNEL, listen_forever
from jobhandler.store.postgres.tasktx import TaskConnections
from jobhandler.store.postgres.wire import (
    check_idle,
    copied,
    copy_jobs,
    read,
    run_blocking,
    send,
    transaction,
    translated,
)
from jobhandler.store.rows import COLUMN_WORDS, PageBudget, dumps
from jobhandler.store.uniqueness import KEY_WORDS

Conn = psycopg.AsyncConnection[DictRow]

# Any fixed number: every jobhandler process migrating this database takes the same lock.
MIGRATION_LOCK = 0x6A6F6268616E646C  # "jobhandl"
CONNECT_TIMEOUT = 5  # seconds; a host that does not answer fails the attempt, not hangs it
# libpq's names (the user timeout in ms); the server's settings of the same names, prefixed tcp_,
# get the same values. Keepalives find a vanished peer on an idle connection, the user timeout
# while a query or its answer is unacknowledged (else TCP retransmits it for 15 minutes).
TCP_SETTINGS = {
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}
LISTENER_NAME = "jobhandler-listen"  # its application_name, unless the URL sets one
PAGE_FETCH = 16  # candidates fetched per round trip while a bounded page is read

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _native(sql: str) -> str:
    """``:name`` as psycopg's ``%(name)s`` (a ``::type`` cast stays as it is)."""
    return _PARAM.sub(r"%(\1)s", sql)


QUERIES = queries.load(
    "postgres",
    _native,
    {
        **COLUMN_WORDS,
        **KEY_WORDS,
        "skip_locked": "FOR UPDATE SKIP LOCKED",
        "submit_channel": f"'{SUBMIT_CHANNEL}'",
        "cancel_channel": f"'{CANCEL_CHANNEL}'",
    },
)
# The claim, exactly as it runs (tests EXPLAIN it).
CLAIM_SQL = QUERIES["claim_jobs"].text


def _identity(value: Any) -> Any:
    return value  # psycopg already decoded the json


def _as_json(value: Any) -> Json:
    # json, not jsonb: the text as written, so a dict's key order survives (migration 010);
    # PostgreSQL casts it where a column is jsonb. Unescaped, as SQLite stores it (rows.dumps:
    # one encoder made once, where json.dumps with options builds one a call): text that is
    # not valid Unicode (a lone surrogate) then fails to encode instead of reaching a json
    # column that would keep its escape.
    return Json(value, dumps=dumps)


def _list(values: list[Any]) -> list[Any]:
    return values  # psycopg binds a list as an array


def _single(steps: Sequence[Step]) -> bool:
    """Whether a unit is one statement, which autocommit makes a transaction of its own."""
    return len(steps) == 1 and (not steps[0].many or steps[0].query.columnar)


async def _nothing_to_stop() -> None:
    return None


class PostgresDialect:
    """The PostgreSQL side of a store (dialect.Dialect): a pool, the database's clock, and
    LISTEN/NOTIFY."""

    name = "postgres"
    queries = QUERIES
    byte_length = "octet_length({}::text)"
    # Values as parameters: JSON as json (the text as written), a list as an array.
    json = staticmethod(_as_json)
    array = staticmethod(_list)
    loads = staticmethod(_identity)
    native = staticmethod(_native)

    def __init__(
        self,
        url: str,
        *,
        listen: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        host_clock: Callable[[], float] = time.time,
        task_connections: int = TASK_CONNECTIONS,
    ) -> None:
        self.url = url
        self._listen = listen
        self._host_clock = host_clock  # what callers' ``now`` comes from; measured for skew
        self._measured_skew: float | None = None  # database clock minus this host's, whole seconds
        # Defaults the URL may override: a bounded connect, names that tell our sessions apart
        # in pg_stat_activity, and TCP keepalives on both ends. A host cut off from the
        # database in the middle of a transaction of several round trips (a page of jobs, a
        # migration) would otherwise hold its locks until the kernel's default, two hours:
        # each side now finds the other gone within about 25 s, or 5 s while it awaits one.
        given = conninfo_to_dict(url)
        defaults: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "jobhandler",
            "keepalives": 1,
            **TCP_SETTINGS,
            "options": " ".join(
                f"-c tcp_{k.removeprefix('tcp_')}={v}" for k, v in TCP_SETTINGS.items()
            ),
        }
        self._connect_args = {k: v for k, v in defaults.items() if k not in given}
        self._listen_args = {**self._connect_args}
        if "application_name" not in given:
            self._listen_args["application_name"] = LISTENER_NAME
        self._pool = AsyncConnectionPool(
            url,
            connection_class=psycopg.AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row, **self._connect_args},
            min_size=min_size,
            max_size=max_size,
            # Fail a caller after this long instead of letting it hang while the database is
            # away; the HTTP layer answers 503 and workers retry.
            timeout=timeout,
            # Its retries of a failed connect back off without bound (a 33 s outage left 27 s of
            # 503s after it); given up after this long, the next caller tries again at once.
            reconnect_timeout=CONNECT_TIMEOUT,
            open=False,
            configure=self._measure_skew,
            # A connection the server dropped is found and replaced before a caller gets it,
            # without a round trip unless the server sent it something (wire.check_idle).
            check=check_idle,
            name="jobhandler",
        )
        self._tasks = TaskConnections(url, task_connections, self._connect_args)
        self._opened = False
        self._listeners: set[asyncio.Task[None]] = set()

    def accept(self, connection: object | None) -> None:
        if connection is None:
            return
        if not isinstance(connection, psycopg.AsyncConnection | psycopg.Connection):
            raise TypeError(
                "connection must be an open psycopg Connection or AsyncConnection to this"
                f" database, not {type(connection).__name__}"
            )
        info, ours = connection.info, conninfo_to_dict(self.url)
        if ours.get("dbname", info.dbname) != info.dbname:
            raise TypeError(
                f"connection is to the database {info.dbname!r}, not this store's"
                f" {ours.get('dbname')!r}"
            )

    async def run(
        self, steps: Sequence[Step], write: bool, connection: object | None = None
    ) -> list[Done]:
        with translated():
            if isinstance(connection, psycopg.AsyncConnection):
                # The caller's transaction: no commit here. A NOTIFY, too, goes out only if
                # they commit.
                return await read(await send(connection, steps))
            if isinstance(connection, psycopg.Connection):  # a blocking one: off the loop
                return await asyncio.to_thread(run_blocking, connection, steps)
            async with self._connection() as conn:
                if copied(steps):  # a big submit: by COPY (wire.py)
                    rows: Sequence[Params] = steps[0].params  # type: ignore[assignment]
                    return [await copy_jobs(conn, rows, self.queries)]
                relaxed = all(step.query.relaxed for step in steps)
                if not relaxed and _single(steps):
                    return await read(await send(conn, steps))  # its own transaction
                return await transaction(conn, steps, relaxed)

    def run_sync(self, steps: Sequence[Step], connection: object) -> list[Done]:
        assert isinstance(connection, psycopg.Connection)
        with translated():
            return run_blocking(connection, steps)

    def transaction(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self._tasks.transaction()  # pooled apart from the store's (tasktx.py)

    def transaction_sync(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tasks.transaction_sync()

    async def page_rows(self, sizes: str, params: Params, budget: PageBudget) -> list[Any]:
        with translated():
            async with self._connection() as conn, conn.transaction():
                # A server-side cursor, fetched a few rows at a time: the database computes
                # sizes only as far as the page goes, and both reads see one snapshot.
                async with conn.cursor(name="jobhandler_page") as candidates:
                    candidates.itersize = PAGE_FETCH
                    await candidates.execute(sizes, params)
                    async for row in candidates:
                        if not budget.take(row):
                            break
                query = self.queries["jobs_by_seq"].text
                cur = await conn.execute(query, {"seqs": budget.seqs})
                return await cur.fetchall()

    def skew(self) -> float:
        """The database's clock minus this host's, measured by each new pooled connection."""
        return self._measured_skew or 0.0

    # -- connections -----------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        with translated():
            if not self._opened:
                # Opened on first use, not in __init__: a pool belongs to a running loop.
                await self._probe()
                await self._pool.open()
                self._opened = True
            async with self._pool.connection() as conn:
                yield conn

    async def _probe(self) -> None:
        """Connect once before the pool starts: a wrong URL or a server that is down fails at
        once, as one line, instead of as the pool's retries and a warning for each of them."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self._connect_args)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable("postgresql: " + " ".join(str(exc).split())) from None
        await conn.close()

    async def _measure_skew(self, conn: Conn) -> None:
        before = self._host_clock()
        cur = await conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8 AS t")
        row = await cur.fetchone()
        after = self._host_clock()
        assert row is not None
        self._measured_skew = skew_of(row["t"] - (before + after) / 2, after - before)

    async def close(self) -> None:
        for task in list(self._listeners):
            task.cancel()
        if self._listeners:
            await asyncio.wait(self._listeners)
        if self._opened:
            await self._pool.close()
        await self._tasks.close()

    # -- schema ----------------------------------------------------------------------------

    async def migrate(self) -> None:
        async with self._connection() as conn, conn.transaction():
            # Held to the end of this transaction: processes starting together migrate in turn,
            # and each later one finds the work done.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
            )
            cur = await conn.execute(self.queries["schema_version"].text)
            row = await cur.fetchone()
            current = row["v"] if row else 0
            for migration in migrations.load(self.name):
                if migration.version > current:
                    await conn.execute(migration.sql)  # no parameters: the whole script runs
                    await conn.execute(
                        "INSERT INTO schema_version (version) VALUES (%s)", (migration.version,)
                    )

    # -- wake-ups --------------------------------------------------------------------------

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        if not self._listen:
            return _nothing_to_stop
        task = asyncio.create_task(
            listen_forever(self.url, self._listen_args, on_submit, on_cancel),
            name="jobhandler-listen",
        )
        self._listeners.add(task)

        async def stop() -> None:
            task.cancel()
            await asyncio.wait([task])
            self._listeners.discard(task)

        return stop


class PostgresStore(StoreCore):
    """The store on a PostgreSQL database: the core (core.py) over a :class:`PostgresDialect`."""

    def __init__(
        self,
        url: str,
        *,
        listen: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        host_clock: Callable[[], float] = time.time,
        task_connections: int = TASK_CONNECTIONS,
    ) -> None:
        self.url = url
        dialect = PostgresDialect(
            url,
            listen=listen,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            host_clock=host_clock,
            task_connections=task_connections,
        )
        super().__init__(dialect)
