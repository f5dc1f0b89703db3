"""Small pieces both stores share: status lists written into SQL, cursors, rows to jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from jobhandler.jobs import TERMINAL, TRANSITIONS, WAITING, Job, JobStatus, Transition
from jobhandler.store.base import HeartbeatReply, JobFilter, JobRef, Page, QueueStats, WorkerInfo


def status_list(statuses: Iterable[JobStatus]) -> str:
    """``('queued', 'scheduled')``: written into the SQL, not bound, so partial indexes apply."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(statuses)) + ")"


# The status sets the stores' statements need, from the one state machine.
WAITING_SQL = status_list(WAITING)
TERMINAL_SQL = status_list(TERMINAL)
CLAIMABLE_SQL = status_list(TRANSITIONS[Transition.CLAIM].sources)
# A waiting job is cancelled at once; a running one is flagged for its worker to stop.
CANCELLABLE_SQL = status_list(
    TRANSITIONS[Transition.CANCEL].sources | TRANSITIONS[Transition.ABORT].sources
)
RETRYABLE_SQL = status_list(TRANSITIONS[Transition.RETRY].sources)
COMPLETED_SQL = status_list([JobStatus.COMPLETED])
FAILED_SQL = status_list(TERMINAL - {JobStatus.COMPLETED})


def encode_cursor(seq: int) -> str:
    """The position after which the next page starts: a job's ``seq``, in decimal."""
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for; ValueError when it is not one.

    Only plain ASCII digits within a 64-bit integer: both stores can compare that, and nothing
    else (SQLite fails on a larger number, PostgreSQL on text).
    """
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > len(str(MAX_SEQ)):
        raise ValueError("invalid cursor")
    seq = int(cursor)
    if seq > MAX_SEQ:
        raise ValueError("invalid cursor")
    return seq


MAX_SEQ = 2**63 - 1  # the largest seq a store can hold (a 64-bit integer)
CURSOR_PATTERN = "^[0-9]{1,18}$"  # what the API describes: always below MAX_SEQ


class Row(Protocol):
    """A database row readable by column name (sqlite3.Row, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def job_from_row(row: Row, loads: Callable[[Any], Any]) -> Job:
    """Build a Job from a row; ``loads`` decodes the JSON columns the dialect returns as text."""

    def json_or_none(value: Any) -> Any:
        return None if value is None else loads(value)

    return Job(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        payload=loads(row["payload"]),
        status=JobStatus(row["status"]),
        priority=row["priority"],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        uncounted=row["uncounted"],
        timeout=row["timeout"],
        run_at=row["run_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=json_or_none(row["result"]),
        error=row["error"],
        traceback=row["traceback"],
        worker_id=row["worker_id"],
        lease_expires_at=row["lease_expires_at"],
        cancel_requested=bool(row["cancel_requested"]),
        progress=json_or_none(row["progress"]),
    )


def heartbeat_reply(
    running: Sequence[JobRef], held: Sequence[Row], registered: bool
) -> HeartbeatReply:
    """Compare what a worker thinks it runs with the rows that still name it."""
    held_attempts = {r["id"]: (r["attempt"], bool(r["cancel_requested"])) for r in held}
    lost, cancel = set(), set()
    for ref in running:
        state = held_attempts.get(ref.id)
        if state is None or state[0] != ref.attempt:
            lost.add(ref.id)
        elif state[1]:
            cancel.add(ref.id)
    return HeartbeatReply(lost=frozenset(lost), cancel=frozenset(cancel), registered=registered)


def list_query(
    where: JobFilter,
    limit: int,
    cursor: str | None,
    oldest_first: bool,
    mark: Callable[[str], str],
    columns: str = "*",
) -> tuple[str, dict[str, Any]]:
    """The SELECT behind ``list_jobs``; ``mark`` writes a named parameter in the dialect's style.

    ``columns``: what to read of each row (``seq`` and a size, for a page bounded in bytes).
    """
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if where.statuses:
        clauses.append(f"status IN {status_list(where.statuses)}")
    for column, value in (("queue", where.queue), ("task", where.task)):
        if value is not None:
            clauses.append(f"{column} = {mark(column)}")
            params[column] = value
    if cursor is not None:
        clauses.append(f"seq {'>' if oldest_first else '<'} {mark('cursor')}")
        params["cursor"] = decode_cursor(cursor)
    sql = f"SELECT {columns} FROM jobs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += f" ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT {mark('limit')}"
    return sql, params


def page_of(rows: Sequence[Row], limit: int, to_job: Callable[[Any], Job]) -> Page:
    """A page from ``limit + 1`` rows: the extra row only says there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["seq"]) if more and rows else None
    return Page([to_job(r) for r in rows], next_cursor)


# -- pages bounded in bytes -------------------------------------------------------------------
#
# A page of big jobs must not be read whole into memory to find out that it is too big. So a
# listing is two reads: first each candidate's ``seq`` and the byte length of its large columns
# (computed by the database, read lazily and abandoned once the budget is spent), then the whole
# rows of only those that fit.

# The columns whose size varies without bound; the others are short (names are limited).
SIZED_COLUMNS = ("payload", "result", "error", "traceback", "progress")
# What a job's JSON takes besides those columns' text: the id, names, timestamps, field names
# (about 500 bytes); rounded up, so the page's real size stays under its budget.
ITEM_OVERHEAD = 1024


def size_sql(byte_length: Callable[[str], str]) -> str:
    """The expression of a row's size; ``byte_length`` is the dialect's byte length of a column
    as text (NULL for NULL)."""
    return " + ".join(f"coalesce({byte_length(c)}, 0)" for c in SIZED_COLUMNS)


class PageBudget:
    """Picks the rows of a page from (``seq``, ``size``) rows, newest first, as they are read.

    A page holds at most ``limit`` rows and ends early, before the row that would take it past
    ``max_bytes``; it always holds at least one row, so a listing always moves on.
    """

    def __init__(self, limit: int, max_bytes: int) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.seqs: list[int] = []
        self.used = 0
        self.more = False  # a row was left out: the page has a next one

    def take(self, row: Row) -> bool:
        """Count one row in; False once the page is full (read no further rows)."""
        size = int(row["size"]) + ITEM_OVERHEAD
        if len(self.seqs) >= self.limit or (self.seqs and self.used + size > self.max_bytes):
            self.more = True
            return False
        self.seqs.append(int(row["seq"]))
        self.used += size
        return True

    def page(self, rows: Iterable[Row], to_job: Callable[[Any], Job]) -> Page:
        """The page from the whole rows of ``self.seqs``, read in any order. A row deleted
        between the two reads is left out; the cursor still moves past it."""
        by_seq = {r["seq"]: r for r in rows}
        jobs = [to_job(by_seq[seq]) for seq in self.seqs if seq in by_seq]
        next_cursor = encode_cursor(self.seqs[-1]) if self.more and self.seqs else None
        return Page(jobs, next_cursor)


# Every column of a job, in the order ``job_row`` gives them (for copying whole jobs).
JOB_COLUMNS = (
    "id", "task", "queue", "payload", "status", "priority", "attempt", "max_attempts",
    "uncounted", "timeout", "run_at", "created_at", "updated_at", "started_at", "finished_at",
    "result", "error", "traceback", "worker_id", "lease_expires_at", "cancel_requested",
    "progress",
)  # fmt: skip


def job_row(job: Job, dumps: Callable[[Any], Any]) -> tuple[Any, ...]:
    """A whole job as column values; ``dumps`` encodes the JSON columns for the dialect."""

    def json_or_none(value: Any) -> Any:
        return None if value is None else dumps(value)

    return (
        job.id, job.task, job.queue, dumps(job.payload), job.status.value, job.priority,
        job.attempt, job.max_attempts, job.uncounted, job.timeout, job.run_at, job.created_at,
        job.updated_at, job.started_at, job.finished_at, json_or_none(job.result), job.error,
        job.traceback, job.worker_id, job.lease_expires_at, job.cancel_requested,
        json_or_none(job.progress),
    )  # fmt: skip


def worker_from_row(row: Row, loads: Callable[[Any], Any]) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=loads(row["queues"]),
        concurrency=row["concurrency"],
        started_at=row["started_at"],
        last_seen_at=row["last_seen_at"],
        running=row["running"],
    )


QUEUE_COUNTS_SQL = "SELECT queue, status, count(*) AS n FROM jobs GROUP BY queue, status"


def queue_stats_of(rows: Iterable[Row]) -> list[QueueStats]:
    """Rows of ``QUEUE_COUNTS_SQL`` as one entry per queue."""
    by_queue: dict[str, dict[str, int]] = {}
    for r in rows:
        by_queue.setdefault(r["queue"], {})[r["status"]] = r["n"]
    return [QueueStats(q, counts) for q, counts in sorted(by_queue.items())]
