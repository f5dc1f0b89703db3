"""Rows and jobs, both ways, from the one declaration of a job's fields (``jobs.Job``).

Column lists, the JSON columns and the words queries use for them (``{job_columns}``...) are all
derived from the dataclasses, so a new field is declared once, in ``jobs.py``, plus a migration.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any, Protocol, cast

from jobhandler.model.jobs import Job, JobStatus, NewJob
from jobhandler.model.records import (
    SEARCH_WINDOW,
    HeartbeatReply,
    JobFilter,
    JobRef,
    Page,
    WorkerInfo,
    decode_cursor,
    encode_cursor,
)
from jobhandler.store.queries import status_list

# Every column of a job, in the dataclass's order; those typed ``Any`` hold JSON.
JOB_COLUMNS = tuple(f.name for f in fields(Job))
JSON_COLUMNS = tuple(f.name for f in fields(Job) if f.type == "Any")
# What a submit writes: the caller's fields, then what the store adds.
NEW_COLUMNS = (*(f.name for f in fields(NewJob)), "status", "created_at", "updated_at")


def _values(columns: Sequence[str]) -> str:
    return ", ".join(f":{c}" for c in columns)


# The parent ids a job's row keeps in ``after`` at most; past that, job_deps alone holds them
# (a fan-in's child is updated as each parent settles, and SQLite rewrites a whole row then).
KEPT_PARENTS = 64

# The words queries may use for column lists (see queries.fill).
COLUMN_WORDS = {
    "kept_parents": str(KEPT_PARENTS),
    "job_columns": ", ".join(JOB_COLUMNS),
    "job_values": _values(JOB_COLUMNS),
    "new_columns": ", ".join(NEW_COLUMNS),
    "new_values": _values(NEW_COLUMNS),
}


class Row(Protocol):
    """A database row readable by column name (sqlite3.Row, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


Loads = Callable[[Any], Any]
Dumps = Callable[[Any], Any]


# Made once: json.dumps with options builds an encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON text, as the stores keep it."""
    kind = type(value)
    if kind is int:  # the commonest payloads, an int or a text, skip the encoder's setup
        return int.__repr__(value)
    if kind is str:
        return json.encoder.encode_basestring(value)  # as the encoder writes text
    return _ENCODER.encode(value)


def job_from_row(row: Row, loads: Loads) -> Job:
    """Build a Job from a row; ``loads`` decodes the JSON columns as the dialect returns them."""
    # By position: a claim turns every row it takes into a Job, and a lookup by column name
    # costs a scan of the names on SQLite. The row's own order is learnt once per shape.
    values = list(row.values()) if isinstance(row, dict) else list(cast(Iterable[Any], row))
    keys = tuple(row.keys())
    order = _ORDERS.get(keys)
    if order is None:
        order = _ORDERS.setdefault(keys, tuple(keys.index(c) for c in JOB_COLUMNS))
    fields = [values[i] for i in order]
    for i in _JSON_AT:
        if fields[i] is not None:
            fields[i] = loads(fields[i])
    fields[_STATUS_AT] = JobStatus(fields[_STATUS_AT])
    fields[_CANCEL_AT] = bool(fields[_CANCEL_AT])
    return Job(*fields)


_ORDERS: dict[tuple[str, ...], tuple[int, ...]] = {}
_JSON_AT = tuple(JOB_COLUMNS.index(c) for c in JSON_COLUMNS)
_STATUS_AT = JOB_COLUMNS.index("status")
_CANCEL_AT = JOB_COLUMNS.index("cancel_requested")


def job_params(job: Job, dumps: Dumps) -> dict[str, Any]:
    """A whole job as column values, for copying it into another store."""
    values = {c: getattr(job, c) for c in JOB_COLUMNS}
    for column in JSON_COLUMNS:
        if values[column] is not None:
            values[column] = dumps(values[column])
    values["status"] = job.status.value
    return values


def created_job(new: NewJob, now: float) -> Job:
    """The job a submit of ``new`` at ``now`` stores: nothing read back is needed."""
    return Job(
        id=new.id,
        task=new.task,
        queue=new.queue,
        payload=new.payload,
        status=new.status_at(now),
        priority=new.priority,
        attempt=0,
        max_attempts=new.max_attempts,
        uncounted=0,
        timeout=new.timeout,
        run_at=new.run_at,
        created_at=now,
        updated_at=now,
        trace_context=new.trace_context,
        unique_key=new.unique_key,
        unique_until=new.unique_until,
        concurrency_key=new.concurrency_key,
    )


# Every column a submit writes, read in one call (a submit builds these for each of its jobs).
_new_values = operator.attrgetter(*NEW_COLUMNS)


def new_job_params(job: Job, dumps: Dumps) -> dict[str, Any]:
    """The columns a submit writes, from the job ``created_job`` made."""
    values = dict(zip(NEW_COLUMNS, _new_values(job), strict=True))
    values["payload"] = dumps(job.payload)
    values["status"] = job.status.value
    return values


def claim_order(row: Row) -> tuple[int, float, int]:
    """The one order of a claim: highest priority, then due first, then oldest submitted."""
    return (-row["priority"], row["run_at"], row["seq"])


def worker_from_row(row: Row, loads: Loads) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=loads(row["queues"]),
        concurrency=row["concurrency"],
        started_at=row["started_at"],
        last_seen_at=row["last_seen_at"],
        running=row["running"],
        incarnation=row["incarnation"],
    )


def heartbeat_reply(
    running: Sequence[JobRef], held: Iterable[Row], registered: bool
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


# -- listing -----------------------------------------------------------------------------------


def list_query(
    where: JobFilter, limit: int, cursor: str | None, oldest_first: bool, columns: str = "*"
) -> tuple[str, dict[str, Any]]:
    """The SELECT behind ``list_jobs``, with ``:name`` parameters.

    ``columns``: what to read of each row (``seq`` and a size, for a page bounded in bytes).
    A search reads from a window of at most SEARCH_WINDOW jobs, a derived table (``found``)
    (its LIMIT makes both planners read the window first, then filter it).
    """
    clauses, params = _filter_clauses(where)
    params["limit"] = limit + 1
    source = "jobs"
    if where.id_prefix is not None:
        source = _id_window(where.id_prefix, params)
        clauses.append("substr(id, 1, :id_length) = :id_prefix")
    if where.search is not None:
        # A scan of text: only over the newest jobs of the other filters, a window that stays
        # put as the pages of the search go on.
        inner = " WHERE " + " AND ".join(clauses) if clauses else ""
        source = f"(SELECT * FROM {source}{inner} ORDER BY seq DESC LIMIT :window) AS found"
        clauses = [
            "(lower(CAST(payload AS TEXT)) LIKE :search ESCAPE '\\'"
            " OR lower(error) LIKE :search ESCAPE '\\')"
        ]
        params.update(window=SEARCH_WINDOW, search=f"%{like_escaped(where.search.lower())}%")
    if cursor is not None:
        clauses.append(f"seq {'>' if oldest_first else '<'} :cursor")
        params["cursor"] = decode_cursor(cursor)
    sql = f"SELECT {columns} FROM {source}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += f" ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT :limit"
    return sql, params


def count_query(where: JobFilter, cap: int) -> tuple[str, dict[str, Any]]:
    """How many jobs ``where`` matches, counted up to ``cap + 1`` (more: "over ``cap``")."""
    sql, params = list_query(where, cap, None, False, "seq")
    return f"SELECT count(*) AS n FROM ({sql}) AS matched", params


def _filter_clauses(where: JobFilter) -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if where.statuses:
        # Written in, not bound, so the partial and status indexes apply.
        clauses.append(f"status IN {status_list(where.statuses)}")
    for column, value in (
        ("queue", where.queue),
        ("task", where.task),
        ("workflow_id", where.workflow_id),
        ("concurrency_key", where.concurrency_key),
    ):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if where.created_before is not None:
        clauses.append("created_at < :created_before")
        params["created_before"] = where.created_before
    return clauses, params


def _id_window(prefix: str, params: dict[str, Any]) -> str:
    """Jobs whose id starts with ``prefix``: a range of the unique index on ``id``, read in its
    own order (no sort, however many ids share a short prefix) and cut at SEARCH_WINDOW. The
    range alone is what the planners estimate (PostgreSQL then walks the index and stops); the
    exact test, outside it, keeps the answer right under a collation that orders text otherwise.
    """
    upper = prefix.rstrip("f-")  # the next hex text after every id with the prefix
    params.update(id_from=prefix, id_prefix=prefix, id_length=len(prefix), id_window=SEARCH_WINDOW)
    bounds = "id >= :id_from"
    if upper:
        params["id_to"] = upper[:-1] + ("a" if upper[-1] == "9" else chr(ord(upper[-1]) + 1))
        bounds += " AND id < :id_to"
    return f"(SELECT * FROM jobs WHERE {bounds} ORDER BY id DESC LIMIT :id_window) AS found"


def like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page_of(rows: Sequence[Row], limit: int, to_job: Callable[[Any], Job]) -> Page:
    """A page from ``limit + 1`` rows: the extra row only says there is a next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["seq"]) if more and rows else None
    return Page([to_job(r) for r in rows], next_cursor)


# -- pages bounded in bytes --------------------------------------------------------------------
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


def sized_columns(byte_length: Callable[[str], str]) -> str:
    """``seq`` and a row's size; ``byte_length`` is the dialect's byte length of a column as
    text (NULL for NULL)."""
    size = " + ".join(f"coalesce({byte_length(c)}, 0)" for c in SIZED_COLUMNS)
    return f"seq, {size} AS size"


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
