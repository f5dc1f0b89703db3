"""The SQLite store: one file in WAL mode, shared safely by several processes on one host.

Every call runs on one dedicated thread that owns the connection, so the event loop never
blocks on the file. Every write is a short ``BEGIN IMMEDIATE`` transaction: it takes the write
lock up front, so a second writer waits on ``busy_timeout`` instead of failing with "database is
locked" halfway through. No transaction is ever held while a job runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal, TypeVar

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
    status_list,
    worker_from_row,
)
from jobhandler.tokens import DuplicateToken, Scope, TokenInfo, as_scope

T = TypeVar("T")
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def _finish_sql(transition: Transition) -> str:
    """One outcome as one guarded UPDATE: the sources, the attempt, and the rescuer's guard."""
    edge = TRANSITIONS[transition]
    # Every transition takes the same parameters; a live one binds `now` and ignores it.
    finished_at = "?" if edge.target in TERMINAL else "NULL + ?"
    uncounted = "uncounted + 1" if transition is Transition.RELEASE else "uncounted"
    return (
        f"UPDATE jobs SET status = '{edge.target.value}', result = ?, error = ?, traceback = ?,"
        f" run_at = coalesce(?, run_at), finished_at = {finished_at}, updated_at = ?,"
        f" uncounted = {uncounted}, lease_expires_at = NULL"
        f" WHERE id = ? AND attempt = ? AND status IN {status_list(edge.sources)}"
        " AND (? IS NULL OR lease_expires_at < ?)"
    )


_FINISH_SQL = {transition: _finish_sql(transition) for transition in Transition}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _mark(name: str) -> str:
    return f":{name}"


# A page's candidates: position and size only (the text's length in bytes, computed by SQLite).
_SIZED = f"seq, {size_sql(lambda column: f'length(CAST({column} AS BLOB))')} AS size"


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


class SQLiteStore:
    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 10.0,
        synchronous: Synchronous = "FULL",
        watch_interval: float = 0.001,
    ) -> None:
        self.path = path
        self.watch_interval = watch_interval
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobhandler-sqlite")
        self._conn: sqlite3.Connection | None = None

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args))
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            _create_private(self.path)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
        return self._conn

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

    def _job(self, row: sqlite3.Row) -> Job:
        return job_from_row(row, json.loads)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda: self._connection().execute("SELECT 1").fetchone())

    # -- schema ----------------------------------------------------------------------------

    async def migrate(self) -> None:
        await self._run(self._migrate)

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for migration in migrations.load(self.dialect):
                if migration.version <= current:
                    continue
                # executescript would commit our transaction; run the statements one by one.
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (migration.version,)
                )

    async def schema_version(self) -> int:
        def read() -> int:
            row = self._connection().execute("SELECT max(version) FROM schema_version").fetchone()
            return int(row[0] or 0)

        return await self._run(read)

    # -- jobs ------------------------------------------------------------------------------

    async def insert_jobs(
        self, jobs: Sequence[NewJob], now: float, connection: object | None = None
    ) -> list[Job]:
        if connection is not None:
            raise TypeError(
                "the SQLite store cannot submit inside a caller's transaction: the connection"
                " argument needs the PostgreSQL store"
            )
        return await self._run(self._insert_jobs, jobs, now)

    def _insert_jobs(self, jobs: Sequence[NewJob], now: float) -> list[Job]:
        rows = [
            (
                j.id,
                j.task,
                j.queue,
                _dumps(j.payload),
                j.status_at(now).value,
                j.priority,
                j.max_attempts,
                j.timeout,
                j.run_at,
                now,
                now,
            )
            for j in jobs
        ]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO jobs (id, task, queue, payload, status, priority, max_attempts,"
                " timeout, run_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
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
        def read() -> Job | None:
            row = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
            found = row.fetchone()
            return None if found is None else self._job(found)

        return await self._run(read)

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

            def read() -> Page:
                rows = self._connection().execute(sql, params).fetchall()
                return page_of(rows, limit, self._job)

            return await self._run(read)
        sizes, params = list_query(where, limit, cursor, oldest_first, _mark, _SIZED)
        budget = PageBudget(limit, max_bytes)

        def read_bounded() -> Page:
            conn = self._connection()
            candidates = conn.execute(sizes, params)
            try:
                for row in candidates:  # stepped lazily: SQLite stops where the page does
                    if not budget.take(row):
                        break
            finally:
                candidates.close()  # ends its read snapshot now, not when it is collected
            marks = ",".join("?" * len(budget.seqs))
            rows = conn.execute(f"SELECT * FROM jobs WHERE seq IN ({marks})", budget.seqs)
            return budget.page(rows, self._job)

        return await self._run(read_bounded)

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        ids = _dumps(list(job_ids))  # one parameter however many ids (SQLite caps their count)

        def read() -> dict[str, JobStatus]:
            rows = self._connection().execute(
                "SELECT id, status FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (ids,)
            )
            return {r["id"]: JobStatus(r["status"]) for r in rows}

        return await self._run(read)

    async def import_jobs(self, jobs: Sequence[Job]) -> None:
        marks = ", ".join("?" * len(JOB_COLUMNS))
        sql = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({marks})"
        rows = [job_row(j, _dumps) for j in jobs]

        def write() -> None:
            with self._write() as conn:
                conn.executemany(sql, rows)

        await self._run(write)

    async def delete_job(self, job_id: str) -> bool:
        def delete() -> bool:
            with self._write() as conn:
                cur = conn.execute(
                    f"DELETE FROM jobs WHERE id = ? AND status IN {TERMINAL_SQL}", (job_id,)
                )
                return cur.rowcount == 1

        return await self._run(delete)

    async def prune(self, now: float, completed_age: float, failed_age: float, limit: int) -> int:
        if limit <= 0:
            return 0
        # Bounded: one short write transaction per call, however much has piled up.
        sql = (
            "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs"
            f" WHERE (status IN {COMPLETED_SQL} AND finished_at < ?)"
            f" OR (status IN {FAILED_SQL} AND finished_at < ?)"
            " ORDER BY finished_at LIMIT ?)"
        )
        params = (now - completed_age, now - failed_age, limit)

        def delete() -> int:
            with self._write() as conn:
                return conn.execute(sql, params).rowcount

        return await self._run(delete)

    # -- the worker's side -----------------------------------------------------------------

    async def claim_jobs(
        self, queues: Sequence[str], worker_id: str, limit: int, now: float, lease: float
    ) -> list[Job]:
        if limit <= 0 or not queues:
            return []
        marks = ",".join("?" * len(queues))
        # One statement: the subquery picks through the partial index, the UPDATE takes them.
        sql = (
            "UPDATE jobs SET status = 'processing', attempt = attempt + 1, worker_id = ?,"
            " lease_expires_at = ?, started_at = ?, updated_at = ?, cancel_requested = 0,"
            " progress = NULL"
            " WHERE seq IN (SELECT seq FROM jobs"
            f" WHERE status IN {CLAIMABLE_SQL} AND queue IN ({marks}) AND run_at <= ?"
            " ORDER BY priority DESC, run_at, seq LIMIT ?)"
            " RETURNING *"
        )
        params = (worker_id, now + lease, now, now, *queues, now, limit)

        def claim() -> list[Job]:
            with self._write() as conn:
                rows = conn.execute(sql, params).fetchall()
            jobs = [self._job(r) for r in rows]
            # RETURNING gives rows in no set order; run them in the order they were picked.
            jobs.sort(key=lambda j: (-j.priority, j.run_at, j.created_at))
            return jobs

        return await self._run(claim)

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        return await self._run(self._finish_jobs, outcomes, now)

    def _finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        applied = []
        with self._write() as conn:
            for o in outcomes:
                params = (
                    None if o.result is None else _dumps(o.result),
                    o.error,
                    o.traceback,
                    o.run_at,
                    now,
                    now,
                    o.job_id,
                    o.attempt,
                    o.only_if_lease_expired_by,
                    o.only_if_lease_expired_by,
                )
                applied.append(conn.execute(_FINISH_SQL[o.transition], params).rowcount == 1)
        return applied

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        # Only the runs the worker still has: a lease it lost track of must be left to expire.
        held = ", ".join(["(?, ?)"] * len(running))
        extend = (
            "UPDATE jobs SET lease_expires_at = ? WHERE worker_id = ? AND status = 'processing'"
            f" AND (id, attempt) IN (VALUES {held}) RETURNING id, attempt, cancel_requested"
        )
        params = [now + lease, worker_id, *(v for r in running for v in (r.id, r.attempt))]

        def beat() -> HeartbeatReply:
            with self._write() as conn:
                rows = conn.execute(extend, params).fetchall() if running else []
                seen = conn.execute(
                    "UPDATE workers SET last_seen_at = ?, running = ? WHERE id = ?",
                    (now, len(running), worker_id),
                )
            return heartbeat_reply(running, rows, registered=seen.rowcount == 1)

        return await self._run(beat)

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        if not running:
            return frozenset()

        def read() -> frozenset[str]:
            rows = self._connection().execute(
                "SELECT id FROM jobs WHERE worker_id = ? AND status = 'processing'"
                " AND cancel_requested = 1",
                (worker_id,),
            )
            mine = {r.id for r in running}
            return frozenset(r["id"] for r in rows if r["id"] in mine)

        return await self._run(read)

    async def record_progress(self, progress: Sequence[tuple[JobRef, Any]], now: float) -> None:
        rows = [(_dumps(value), now, ref.id, ref.attempt) for ref, value in progress]

        def write() -> None:
            with self._write() as conn:
                conn.executemany(
                    "UPDATE jobs SET progress = ?, updated_at = ?"
                    " WHERE id = ? AND attempt = ? AND status = 'processing'",
                    rows,
                )

        await self._run(write)

    async def expired_jobs(self, now: float, limit: int) -> list[Job]:
        def read() -> list[Job]:
            rows = self._connection().execute(
                "SELECT * FROM jobs WHERE status = 'processing' AND lease_expires_at < ?"
                " ORDER BY lease_expires_at LIMIT ?",
                (now, limit),
            )
            return [self._job(r) for r in rows]

        return await self._run(read)

    # -- user actions ----------------------------------------------------------------------

    async def request_cancel(self, job_id: str, now: float) -> Job:
        # One statement either way: a waiting job ends at once, a running one is flagged for
        # its worker (which stops the run and writes the cancelled outcome, fenced).
        sql = (
            "UPDATE jobs SET"
            f" status = CASE WHEN status IN {WAITING_SQL} THEN 'cancelled' ELSE status END,"
            f" finished_at = CASE WHEN status IN {WAITING_SQL} THEN ? ELSE finished_at END,"
            " cancel_requested = 1, updated_at = ?"
            f" WHERE id = ? AND status IN {CANCELLABLE_SQL} RETURNING *"
        )

        def cancel() -> Job:
            with self._write() as conn:
                row = conn.execute(sql, (now, now, job_id)).fetchone()
                if row is None:
                    raise self._refusal(conn, job_id, "job cannot be cancelled")
            return self._job(row)

        return await self._run(cancel)

    async def retry_job(self, job_id: str, now: float) -> Job:
        # A user retry starts afresh: earlier claims stop counting against max_attempts.
        sql = (
            "UPDATE jobs SET status = 'queued', run_at = ?, updated_at = ?, uncounted = attempt,"
            " finished_at = NULL, result = NULL, error = NULL, traceback = NULL,"
            " cancel_requested = 0, progress = NULL, lease_expires_at = NULL"
            f" WHERE id = ? AND status IN {RETRYABLE_SQL} RETURNING *"
        )

        def retry() -> Job:
            with self._write() as conn:
                row = conn.execute(sql, (now, now, job_id)).fetchone()
                if row is None:
                    raise self._refusal(
                        conn, job_id, "only a failed or cancelled job can be retried"
                    )
            return self._job(row)

        return await self._run(retry)

    def _refusal(self, conn: sqlite3.Connection, job_id: str, message: str) -> Exception:
        row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return JobNotFound(job_id)
        return InvalidTransition(message, row["status"])

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        """Wake-ups across processes: a thread watches the file for new jobs.

        A file has no channel to carry notifications, so a small thread on its own connection
        reads ``PRAGMA data_version`` (which changes when another connection commits, and costs
        no lock) every ``watch_interval`` seconds, and calls ``on_submit`` when the newest job
        is newer than before. Cancels arrive through the worker's cancel poll instead.
        """
        loop = asyncio.get_running_loop()
        stopped = threading.Event()

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
            stopped.set()
            await asyncio.to_thread(watcher.join)

        return stop

    # -- workers and stats -----------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        def write() -> None:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO workers (id, host, pid, queues, concurrency,"
                    " started_at, last_seen_at, running) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        info.id,
                        info.host,
                        info.pid,
                        _dumps(info.queues),
                        info.concurrency,
                        info.started_at,
                        info.last_seen_at,
                        info.running,
                    ),
                )

        await self._run(write)

    async def deregister_worker(self, worker_id: str) -> None:
        def write() -> None:
            with self._write() as conn:
                conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

        await self._run(write)

    async def list_workers(self) -> list[WorkerInfo]:
        def read() -> list[WorkerInfo]:
            rows = self._connection().execute("SELECT * FROM workers ORDER BY started_at")
            return [worker_from_row(r, json.loads) for r in rows]

        return await self._run(read)

    async def queue_stats(self) -> list[QueueStats]:
        def read() -> list[QueueStats]:
            return queue_stats_of(self._connection().execute(QUEUE_COUNTS_SQL))

        return await self._run(read)

    # -- API tokens ------------------------------------------------------------------------

    async def add_token(self, token: TokenInfo) -> None:
        def write() -> None:
            try:
                with self._write() as conn:
                    conn.execute(
                        "INSERT INTO tokens (name, scope, hash, created_at) VALUES (?,?,?,?)",
                        (token.name, token.scope, token.hash, token.created_at),
                    )
            except sqlite3.IntegrityError:
                raise DuplicateToken(f"a token named {token.name!r} exists already") from None

        await self._run(write)

    async def list_tokens(self) -> list[TokenInfo]:
        def read() -> list[TokenInfo]:
            rows = self._connection().execute("SELECT * FROM tokens ORDER BY created_at, name")
            return [
                TokenInfo(
                    r["name"], as_scope(r["scope"]), r["hash"], r["created_at"], r["last_used_at"]
                )
                for r in rows
            ]

        return await self._run(read)

    async def revoke_token(self, name: str) -> bool:
        def delete() -> bool:
            with self._write() as conn:
                return conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount == 1

        return await self._run(delete)

    async def token_scopes(self) -> dict[str, Scope]:
        def read() -> dict[str, Scope]:
            rows = self._connection().execute("SELECT hash, scope FROM tokens")
            return {r["hash"]: as_scope(r["scope"]) for r in rows}

        return await self._run(read)

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        def write() -> None:
            with self._write() as conn:
                conn.executemany(
                    "UPDATE tokens SET last_used_at = ? WHERE hash = ?", [(now, h) for h in hashes]
                )

        await self._run(write)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
