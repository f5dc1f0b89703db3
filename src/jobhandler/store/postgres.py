"""The PostgreSQL store: many processes on many hosts coordinate through one database.

psycopg 3 async with a connection pool in autocommit mode: a single statement is its own
transaction, so the claim (``FOR UPDATE SKIP LOCKED`` in a CTE, then ``UPDATE ... RETURNING``)
commits at once and no lock outlives the round trip. Writes of several statements take an
explicit transaction. Connection failures and pool timeouts surface as ``StoreUnavailable``.

Time. Rows keep the domain's float seconds since the epoch in ``double precision`` columns, and
callers pass ``now`` as they do to the SQLite store, so tests own the clock and both stores hold
the same numbers. A lease, though, is written by one host (claim, heartbeat) and judged by
another (the rescuer on any worker): a host whose clock is off by more than the lease would
have live jobs rescued under it, or rescue others' too early. So lease deadlines live on the
database's timeline: each new pooled connection measures how far this host's clock is from
``clock_timestamp()``, in whole seconds, and every lease deadline this store writes or compares
is shifted by that skew. On hosts kept in sync (and in tests, which run beside the database)
the skew is zero and the numbers are exactly the caller's; a host that drifted still agrees
with every other host about when a lease ran out. Whole seconds, because leases are tens of
seconds and a sub-second measurement would only add jitter. ``run_at``, ``created_at`` and the
rest stay in the caller's time: being off by a host's skew there costs nothing that matters.

Wake-ups. ``insert_jobs`` and ``retry_job`` NOTIFY ``jobhandler_jobs`` (one notification per
transaction, and PostgreSQL folds identical ones together), ``request_cancel`` of a processing
job NOTIFYs ``jobhandler_cancel`` with the job id. ``listen`` holds one dedicated connection
outside the pool for LISTEN. With ``listen=False`` (PgBouncer in transaction mode cannot hold a
LISTEN) it delivers nothing; NOTIFY itself still goes out, as it passes through such poolers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jobhandler.errors import InvalidTransition, JobNotFound, StoreUnavailable
from jobhandler.jobs import (
    TERMINAL,
    TRANSITIONS,
    Job,
    JobStatus,
    NewJob,
    Outcome,
    Transition,
)
from jobhandler.store import migrations
from jobhandler.store.base import (
    HeartbeatReply,
    JobFilter,
    JobRef,
    Page,
    QueueStats,
    WorkerInfo,
)
from jobhandler.store.common import (
    CANCELLABLE_SQL,
    CLAIMABLE_SQL,
    COMPLETED_SQL,
    FAILED_SQL,
    JOB_COLUMNS,
    QUEUE_COUNTS_SQL,
    RETRYABLE_SQL,
    TERMINAL_SQL,
    WAITING_SQL,
    PageBudget,
    heartbeat_reply,
    job_from_row,
    job_row,
    list_query,
    page_of,
    queue_stats_of,
    size_sql,
    worker_from_row,
)
from jobhandler.tokens import DuplicateToken, Scope, TokenInfo, as_scope

log = logging.getLogger("jobhandler.store.postgres")

Conn = psycopg.AsyncConnection[DictRow]

SUBMIT_CHANNEL = "jobhandler_jobs"
CANCEL_CHANNEL = "jobhandler_cancel"
# Any fixed number: every jobhandler process migrating this database takes the same lock.
MIGRATION_LOCK = 0x6A6F6268616E646C  # "jobhandl"
CONNECT_TIMEOUT = 5  # seconds; a host that does not answer fails the attempt, not hangs it
LISTENER_NAME = "jobhandler-listen"  # its application_name, unless the URL sets one
LISTEN_CHECK = 30.0  # seconds without a notification before the listener checks its connection
LISTEN_BACKOFF = (0.1, 10.0)  # first and longest wait before reconnecting the listener

# Targets, from the state machine too, written in as literals.
_RUNNING = f"'{TRANSITIONS[Transition.CLAIM].target.value}'"
_CANCELLED = f"'{TRANSITIONS[Transition.CANCEL].target.value}'"
_REQUEUED = f"'{TRANSITIONS[Transition.RETRY].target.value}'"

INSERT_SQL = f"""
WITH inserted AS (
    INSERT INTO jobs (id, task, queue, payload, status, priority, max_attempts, timeout, run_at,
                      created_at, updated_at)
    SELECT n.*, %(now)s, %(now)s
    FROM unnest(%(id)s::text[], %(task)s::text[], %(queue)s::text[], %(payload)s::jsonb[],
                %(status)s::text[], %(priority)s::int[], %(max_attempts)s::int[],
                %(timeout)s::float8[], %(run_at)s::float8[]) AS n
    RETURNING 1
)
SELECT pg_notify('{SUBMIT_CHANNEL}', '')
"""

# The claim, exactly as it runs (tests EXPLAIN it). The CTE picks through the partial index and
# locks the rows it picks, skipping rows another claimer holds; the UPDATE takes them.
CLAIM_SQL = f"""
WITH picked AS (
    SELECT seq FROM jobs
    WHERE status IN {CLAIMABLE_SQL} AND queue = ANY(%(queues)s) AND run_at <= %(now)s
    ORDER BY priority DESC, run_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET status = {_RUNNING}, attempt = attempt + 1, worker_id = %(worker)s,
    lease_expires_at = %(lease_until)s, started_at = %(now)s, updated_at = %(now)s,
    cancel_requested = false, progress = NULL
FROM picked WHERE jobs.seq = picked.seq
RETURNING jobs.*
"""

# One outcome. Sources are bound, not written in: the row is found by its unique id, so there
# is no partial index to match, and one statement text serves every transition.
FINISH_SQL = """
UPDATE jobs SET status = %(target)s, result = %(result)s, error = %(error)s,
    traceback = %(traceback)s, run_at = coalesce(%(run_at)s, run_at),
    finished_at = %(finished_at)s, updated_at = %(now)s, uncounted = uncounted + %(uncount)s,
    lease_expires_at = NULL
WHERE id = %(id)s AND attempt = %(attempt)s AND status = ANY(%(sources)s)
    AND (%(expired_by)s::float8 IS NULL OR lease_expires_at < %(expired_by)s)
"""

HEARTBEAT_SQL = f"""
WITH seen AS (
    UPDATE workers SET last_seen_at = %(now)s, running = %(running)s WHERE id = %(worker)s
    RETURNING 1
), held AS (
    -- Only the runs the worker still has: a lease it lost track of must be left to expire.
    UPDATE jobs SET lease_expires_at = %(lease_until)s
    WHERE worker_id = %(worker)s AND status = {_RUNNING}
      AND (id, attempt) IN (SELECT * FROM unnest(%(ids)s::text[], %(attempts)s::int[]))
    RETURNING id, attempt, cancel_requested
)
SELECT (SELECT count(*) FROM seen) AS registered,
       coalesce((SELECT jsonb_agg(held) FROM held), '[]'::jsonb) AS held
"""


def _act_sql(update: str, notify: str) -> str:
    """request_cancel and retry_job as one statement each: the UPDATE, a NOTIFY about what it
    changed, and the status the job had in the same snapshot, so a refusal can say why without
    a second round trip. Selecting from ``notified`` is what makes that CTE run, and gives
    exactly one row whether or not the UPDATE matched."""
    return f"""
WITH updated AS ({update} RETURNING *),
notified AS ({notify})
SELECT updated.*, (SELECT status FROM jobs WHERE id = %(id)s) AS prior_status
FROM (SELECT count(*) FROM notified) AS notices LEFT JOIN updated ON true
"""


CANCEL_SQL = _act_sql(
    f"""UPDATE jobs SET
        status = CASE WHEN status IN {WAITING_SQL} THEN {_CANCELLED} ELSE status END,
        finished_at = CASE WHEN status IN {WAITING_SQL} THEN %(now)s ELSE finished_at END,
        cancel_requested = true, updated_at = %(now)s
    WHERE id = %(id)s AND status IN {CANCELLABLE_SQL}""",
    f"SELECT pg_notify('{CANCEL_CHANNEL}', id) FROM updated WHERE status = {_RUNNING}",
)

# A user retry starts afresh: earlier claims stop counting against max_attempts.
RETRY_SQL = _act_sql(
    f"""UPDATE jobs SET status = {_REQUEUED}, run_at = %(now)s, updated_at = %(now)s,
        uncounted = attempt, finished_at = NULL, result = NULL, error = NULL, traceback = NULL,
        cancel_requested = false, progress = NULL, lease_expires_at = NULL
    WHERE id = %(id)s AND status IN {RETRYABLE_SQL}""",
    f"SELECT pg_notify('{SUBMIT_CHANNEL}', '') FROM updated",
)

PRUNE_SQL = f"""
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE (status IN {COMPLETED_SQL} AND finished_at < %(completed_before)s)
       OR (status IN {FAILED_SQL} AND finished_at < %(failed_before)s)
    ORDER BY finished_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
"""


def _mark(name: str) -> str:
    return f"%({name})s"


# A page's candidates: position and size only (the JSON's and text's length in bytes).
_SIZED = f"seq, {size_sql(lambda column: f'octet_length({column}::text)')} AS size"
PAGE_FETCH = 16  # candidates fetched per round trip while a bounded page is read


def _identity(value: Any) -> Any:
    return value  # psycopg already decoded the jsonb


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


async def _nothing_to_stop() -> None:
    return None


class PostgresStore:
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        listen: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        host_clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._listen = listen
        self._host_clock = host_clock  # what callers' ``now`` comes from; measured for skew
        self._skew: float | None = None  # database clock minus this host's, whole seconds
        # Defaults the URL may override: a bounded connect, and names that tell our sessions
        # apart in pg_stat_activity.
        given = conninfo_to_dict(url)
        defaults: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "jobhandler",
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
            open=False,
            configure=self._measure_skew,
            # A connection the server dropped is found and replaced before a caller gets it,
            # for one empty round trip per checkout.
            check=AsyncConnectionPool.check_connection,
            name="jobhandler",
        )
        self._opened = False
        self._listeners: set[asyncio.Task[None]] = set()

    # -- plumbing --------------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        try:
            if not self._opened:
                # Opened on first use, not in __init__: a pool belongs to a running loop.
                await self._pool.open()
                self._opened = True
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"postgresql: {exc}") from exc

    async def _fetchall(self, sql: str, params: dict[str, Any]) -> list[DictRow]:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _measure_skew(self, conn: Conn) -> None:
        before = self._host_clock()
        cur = await conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8 AS t")
        row = await cur.fetchone()
        after = self._host_clock()
        assert row is not None
        self._skew = float(round(row["t"] - (before + after) / 2))

    async def _lease_time(self, now: float) -> float:
        """A caller's ``now`` on the database's timeline, for lease deadlines."""
        if self._skew is None:
            async with self._connection():
                pass  # a new connection measures the skew before it is handed out
        assert self._skew is not None
        return now + self._skew

    def _job(self, row: DictRow) -> Job:
        return job_from_row(row, _identity)

    async def close(self) -> None:
        for task in list(self._listeners):
            task.cancel()
        if self._listeners:
            await asyncio.wait(self._listeners)
        if self._opened:
            await self._pool.close()

    async def ping(self) -> None:
        await self._fetchall("SELECT 1", {})

    # -- schema ----------------------------------------------------------------------------

    async def migrate(self) -> None:
        async with self._connection() as conn, conn.transaction():
            # Held to the end of this transaction: processes starting together migrate in turn,
            # and each later one finds the work done.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
            )
            cur = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_version")
            row = await cur.fetchone()
            current = row["v"] if row else 0
            for migration in migrations.load(self.dialect):
                if migration.version > current:
                    await conn.execute(migration.sql)  # no parameters: several statements run
                    await conn.execute(
                        "INSERT INTO schema_version (version) VALUES (%s)", (migration.version,)
                    )

    async def schema_version(self) -> int:
        (row,) = await self._fetchall(
            "SELECT coalesce(max(version), 0) AS v FROM schema_version", {}
        )
        return int(row["v"])

    # -- jobs ------------------------------------------------------------------------------

    async def insert_jobs(
        self, jobs: Sequence[NewJob], now: float, connection: object | None = None
    ) -> list[Job]:
        if connection is not None and not isinstance(connection, psycopg.AsyncConnection):
            raise TypeError(
                "connection must be an open psycopg.AsyncConnection to this database,"
                f" not {type(connection).__name__}"
            )
        if jobs:
            params = {
                "now": now,
                "id": [j.id for j in jobs],
                "task": [j.task for j in jobs],
                "queue": [j.queue for j in jobs],
                "payload": [Jsonb(j.payload) for j in jobs],
                "status": [j.status_at(now).value for j in jobs],
                "priority": [j.priority for j in jobs],
                "max_attempts": [j.max_attempts for j in jobs],
                "timeout": [j.timeout for j in jobs],
                "run_at": [j.run_at for j in jobs],
            }
            if connection is None:
                await self._fetchall(INSERT_SQL, params)
            else:
                # The caller's transaction: no commit here. The NOTIFY, too, goes out only if
                # they commit.
                try:
                    await connection.execute(INSERT_SQL, params)
                except psycopg.OperationalError as exc:
                    raise StoreUnavailable(f"postgresql: {exc}") from exc
        return [
            Job(
                id=j.id,
                task=j.task,
                queue=j.queue,
                payload=j.payload,
                status=j.status_at(now),
                priority=j.priority,
                attempt=0,
                max_attempts=j.max_attempts,
                uncounted=0,
                timeout=j.timeout,
                run_at=j.run_at,
                created_at=now,
                updated_at=now,
            )
            for j in jobs
        ]

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._fetchall("SELECT * FROM jobs WHERE id = %(id)s", {"id": job_id})
        return self._job(rows[0]) if rows else None

    async def list_jobs(
        self,
        where: JobFilter,
        limit: int,
        cursor: str | None,
        oldest_first: bool = False,
        max_bytes: int | None = None,
    ) -> Page:
        if max_bytes is None:
            sql, params = list_query(where, limit, cursor, oldest_first, _mark)
            return page_of(await self._fetchall(sql, params), limit, self._job)
        sizes, params = list_query(where, limit, cursor, oldest_first, _mark, _SIZED)
        budget = PageBudget(limit, max_bytes)
        async with self._connection() as conn, conn.transaction():
            # A server-side cursor, fetched a few rows at a time: the database computes sizes
            # only as far as the page goes, and both reads see one snapshot.
            async with conn.cursor(name="jobhandler_page") as candidates:
                candidates.itersize = PAGE_FETCH
                await candidates.execute(sizes, params)
                async for row in candidates:
                    if not budget.take(row):
                        break
            cur = await conn.execute(
                "SELECT * FROM jobs WHERE seq = ANY(%(seqs)s)", {"seqs": budget.seqs}
            )
            return budget.page(await cur.fetchall(), self._job)

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        rows = await self._fetchall(
            "SELECT id, status FROM jobs WHERE id = ANY(%(ids)s)", {"ids": list(job_ids)}
        )
        return {r["id"]: JobStatus(r["status"]) for r in rows}

    async def import_jobs(self, jobs: Sequence[Job]) -> None:
        marks = ", ".join(["%s"] * len(JOB_COLUMNS))
        sql = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({marks})"
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(sql, [job_row(j, Jsonb) for j in jobs])

    async def delete_job(self, job_id: str) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM jobs WHERE id = %(id)s AND status IN {TERMINAL_SQL}", {"id": job_id}
            )
            return cur.rowcount == 1

    async def prune(self, now: float, completed_age: float, failed_age: float, limit: int) -> int:
        if limit <= 0:
            return 0
        params = {
            "completed_before": now - completed_age,
            "failed_before": now - failed_age,
            "limit": limit,
        }
        async with self._connection() as conn:
            cur = await conn.execute(PRUNE_SQL, params)
            return cur.rowcount

    # -- the worker's side -----------------------------------------------------------------

    async def claim_jobs(
        self, queues: Sequence[str], worker_id: str, limit: int, now: float, lease: float
    ) -> list[Job]:
        if limit <= 0 or not queues:
            return []
        params = {
            "queues": list(queues),
            "now": now,
            "limit": limit,
            "worker": worker_id,
            "lease_until": await self._lease_time(now) + lease,
        }
        rows = await self._fetchall(CLAIM_SQL, params)
        # RETURNING gives rows in no set order; run them in the order they were picked.
        rows.sort(key=lambda r: (-r["priority"], r["run_at"], r["seq"]))
        return [self._job(r) for r in rows]

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        if not outcomes:
            return []
        params = []
        for o in outcomes:
            edge = TRANSITIONS[o.transition]
            guard = o.only_if_lease_expired_by
            params.append(
                {
                    "target": edge.target.value,
                    "result": _jsonb(o.result),
                    "error": o.error,
                    "traceback": o.traceback,
                    "run_at": o.run_at,
                    "finished_at": now if edge.target in TERMINAL else None,
                    "now": now,
                    "uncount": 1 if o.transition is Transition.RELEASE else 0,
                    "id": o.job_id,
                    "attempt": o.attempt,
                    "sources": [s.value for s in edge.sources],
                    "expired_by": None if guard is None else await self._lease_time(guard),
                }
            )
        # One statement per outcome, in order, as SQLite applies them (a later outcome for the
        # same job sees the earlier one's effect), pipelined into one round trip and one
        # transaction; each statement's row count says whether its outcome applied.
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(FINISH_SQL, params, returning=True)
            return [result.rowcount == 1 async for result in cur.results()]

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        params = {
            "now": now,
            "running": len(running),
            "worker": worker_id,
            "lease_until": await self._lease_time(now) + lease,
            "ids": [r.id for r in running],
            "attempts": [r.attempt for r in running],
        }
        (row,) = await self._fetchall(HEARTBEAT_SQL, params)
        return heartbeat_reply(running, row["held"], registered=row["registered"] == 1)

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        if not running:
            return frozenset()
        rows = await self._fetchall(
            f"SELECT id FROM jobs WHERE worker_id = %(worker)s AND status = {_RUNNING}"
            " AND cancel_requested",
            {"worker": worker_id},
        )
        mine = {r.id for r in running}
        return frozenset(r["id"] for r in rows if r["id"] in mine)

    async def record_progress(self, progress: Sequence[tuple[JobRef, Any]], now: float) -> None:
        if not progress:
            return
        rows = [(Jsonb(value), now, ref.id, ref.attempt) for ref, value in progress]
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "UPDATE jobs SET progress = %s, updated_at = %s"
                f" WHERE id = %s AND attempt = %s AND status = {_RUNNING}",
                rows,
            )

    async def expired_jobs(self, now: float, limit: int) -> list[Job]:
        rows = await self._fetchall(
            f"SELECT * FROM jobs WHERE status = {_RUNNING} AND lease_expires_at < %(now)s"
            " ORDER BY lease_expires_at LIMIT %(limit)s",
            {"now": await self._lease_time(now), "limit": limit},
        )
        return [self._job(r) for r in rows]

    # -- user actions ----------------------------------------------------------------------

    async def request_cancel(self, job_id: str, now: float) -> Job:
        return await self._act(CANCEL_SQL, job_id, now, "job cannot be cancelled")

    async def retry_job(self, job_id: str, now: float) -> Job:
        return await self._act(
            RETRY_SQL, job_id, now, "only a failed or cancelled job can be retried"
        )

    async def _act(self, sql: str, job_id: str, now: float, refusal: str) -> Job:
        (row,) = await self._fetchall(sql, {"id": job_id, "now": now})
        if row["id"] is not None:
            return self._job(row)
        if row["prior_status"] is None:
            raise JobNotFound(job_id)
        raise InvalidTransition(refusal, row["prior_status"])

    # -- wake-ups --------------------------------------------------------------------------

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        if not self._listen:
            return _nothing_to_stop
        task = asyncio.create_task(
            self._listen_forever(on_submit, on_cancel), name="jobhandler-listen"
        )
        self._listeners.add(task)

        async def stop() -> None:
            task.cancel()
            await asyncio.wait([task])
            self._listeners.discard(task)

        return stop

    async def _listen_forever(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> None:
        delay, longest = LISTEN_BACKOFF
        while True:
            try:
                # Its own connection, not a pooled one: LISTEN lasts as long as the session.
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, **self._listen_args
                ) as conn:
                    await conn.execute(f"LISTEN {SUBMIT_CHANNEL}")
                    await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                    delay = LISTEN_BACKOFF[0]
                    # Whatever was submitted while nobody listened went unheard: look now.
                    _call(on_submit)
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_CHECK):
                            if note.channel == CANCEL_CHANNEL:
                                _call(on_cancel, note.payload)
                            else:
                                _call(on_submit)
                        # Quiet for a while: a round trip shows whether the link is still there.
                        async with asyncio.timeout(CONNECT_TIMEOUT):
                            await conn.execute("SELECT 1")
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("listen connection lost (%s); reconnecting in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)

    # -- workers and stats -----------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        await self._fetchall(
            "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, last_seen_at,"
            " running) VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s,"
            " %(started_at)s, %(last_seen_at)s, %(running)s)"
            " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
            " queues = excluded.queues, concurrency = excluded.concurrency,"
            " started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,"
            " running = excluded.running"
            " RETURNING id",
            {
                "id": info.id,
                "host": info.host,
                "pid": info.pid,
                "queues": Jsonb(info.queues),
                "concurrency": info.concurrency,
                "started_at": info.started_at,
                "last_seen_at": info.last_seen_at,
                "running": info.running,
            },
        )

    async def deregister_worker(self, worker_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute("DELETE FROM workers WHERE id = %(id)s", {"id": worker_id})

    async def list_workers(self) -> list[WorkerInfo]:
        rows = await self._fetchall("SELECT * FROM workers ORDER BY started_at", {})
        return [worker_from_row(r, _identity) for r in rows]

    async def queue_stats(self) -> list[QueueStats]:
        return queue_stats_of(await self._fetchall(QUEUE_COUNTS_SQL, {}))

    # -- API tokens ------------------------------------------------------------------------

    async def add_token(self, token: TokenInfo) -> None:
        try:
            await self._fetchall(
                "INSERT INTO tokens (name, scope, hash, created_at)"
                " VALUES (%(name)s, %(scope)s, %(hash)s, %(created_at)s) RETURNING name",
                {
                    "name": token.name,
                    "scope": token.scope,
                    "hash": token.hash,
                    "created_at": token.created_at,
                },
            )
        except psycopg.errors.UniqueViolation:
            raise DuplicateToken(f"a token named {token.name!r} exists already") from None

    async def list_tokens(self) -> list[TokenInfo]:
        rows = await self._fetchall("SELECT * FROM tokens ORDER BY created_at, name", {})
        return [
            TokenInfo(
                r["name"], as_scope(r["scope"]), r["hash"], r["created_at"], r["last_used_at"]
            )
            for r in rows
        ]

    async def revoke_token(self, name: str) -> bool:
        rows = await self._fetchall(
            "DELETE FROM tokens WHERE name = %(name)s RETURNING name", {"name": name}
        )
        return len(rows) == 1

    async def token_scopes(self) -> dict[str, Scope]:
        rows = await self._fetchall("SELECT hash, scope FROM tokens", {})
        return {r["hash"]: as_scope(r["scope"]) for r in rows}

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        await self._fetchall(
            "UPDATE tokens SET last_used_at = %(now)s WHERE hash = ANY(%(hashes)s) RETURNING 1",
            {"now": now, "hashes": list(hashes)},
        )


def _call(callback: Callable[..., None], *args: Any) -> None:
    """Run a wake-up callback; its failure must not take the listener down."""
    try:
        callback(*args)
    except Exception:
        log.exception("wake-up callback %r failed", callback)
