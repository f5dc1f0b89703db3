"""The value types the store takes and returns, shared by every layer: filters, pages,
claims, heartbeats, workers, queue statistics, attempts, schedules, idempotency records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.jobs import Job, JobStatus


@dataclass(frozen=True, slots=True)
class JobFilter:
    statuses: frozenset[JobStatus] = frozenset()
    queue: str | None = None
    task: str | None = None
    created_before: float | None = None
    workflow_id: str | None = None
    concurrency_key: str | None = None  # only this tenant's jobs (service/tenancy.py)
    # A search, bounded to ``SEARCH_WINDOW`` jobs (see store/rows.py): ids starting with this
    # (lowercase hex and dashes), and jobs whose payload or error holds this text (any case).
    id_prefix: str | None = None
    search: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None  # opaque; pass back to get the next (older) page


@dataclass(frozen=True, slots=True)
class JobRef:
    """A worker's claim on one job: the attempt it holds is its fencing token."""

    id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    lost: frozenset[str] = frozenset()  # no longer ours: stop the run and write nothing
    cancel: frozenset[str] = frozenset()  # someone asked to cancel: stop the run, end cancelled
    registered: bool = True  # False: the registry forgot this worker (it was silent too long)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: float
    last_seen_at: float
    running: int = 0
    incarnation: str | None = None  # boot and PID namespace (worker/predecessors.py)


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    counts: dict[str, int] = field(default_factory=dict)
    # When the job that has waited longest became due (its run_at); None: nothing is due.
    oldest_waiting_at: float | None = None
    # Flow control (filled in by the service, service/flow.py): paused, the limits that hold, and
    # whether a live worker serves the queue.
    paused: bool = False
    concurrency: int | None = None
    rate_limit: str | None = None
    served: bool = False
    key_concurrency: int | None = None  # per concurrency key (docs/tenants.md)
    key_rate_limit: str | None = None


@dataclass(frozen=True, slots=True)
class FlowLimit:
    """What may start of a queue's or a task's jobs, over all workers: nothing while paused
    (queues only), at most ``concurrency`` at once, at most ``rate_limit`` ("100/s")."""

    scope: Literal["queue", "task"]
    name: str
    paused: bool = False
    concurrency: int | None = None
    rate_limit: str | None = None
    # The same, counted per concurrency key: per (queue, key) or (task, key).
    key_concurrency: int | None = None
    key_rate_limit: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job. ``finished_at`` and ``outcome`` are None while it runs; ``outcome`` is
    the status the run left the job in (``scheduled``: to be retried), or ``interrupted``: a
    graceful stop handed it back."""

    attempt: int
    worker_id: str | None
    started_at: float | None
    finished_at: float | None
    outcome: str | None
    error: str | None
    traceback: str | None
    after_user_retry: bool = False  # the first run after a user's retry of the finished job


@dataclass(frozen=True, slots=True)
class Throughput:
    """Jobs that finished in one minute (``minute``: its start, epoch seconds), by status."""

    minute: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A periodic schedule as stored (``model/schedules.py``): its declaration, whether it is
    paused, and its run times (``last_job_id``: the job its last run made)."""

    name: str
    task: str
    cron: str | None
    every: float | None
    timezone: str
    payload: Any
    missed: str
    paused: bool
    next_run_at: float
    last_run_at: float | None = None
    last_job_id: str | None = None


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


class IdempotencyKeyTaken(JobHandlerError):
    """A submit's Idempotency-Key is recorded already; nothing of the submit was stored."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What an idempotent submit stores beside its jobs, to answer a repeat of it.

    ``items``: per job, the id it was given, its unique key and whether the key's scope is a
    window; a repeat answers with the jobs of those ids, or for a duplicate with the job that
    holds its key.
    """

    owner: str  # whose key: a token's hash, or "anonymous" on an open server
    key: str
    fingerprint: str  # the request body's hash: a repeat must send the same
    batch: bool
    items: tuple[tuple[str, str | None, bool], ...]
    created_at: float


# How many jobs an id-prefix or a text search looks through: the newest ids with the prefix,
# and the newest jobs of the other filters. A text search is a scan: this keeps it short.
SEARCH_WINDOW = 10_000

BulkAction = Literal["cancel", "retry", "delete"]
SKIPPED_SHOWN = 1000  # jobs a bulk retry skipped that its answer names (it counts them all)


@dataclass(frozen=True, slots=True)
class BulkStep:
    changed: int  # jobs this step changed
    next_after: int | None  # where the next step starts; None: no job is left to look at
    flagged: list[str] = field(default_factory=list)  # running jobs asked to stop
    # Jobs a retry left as they were because another job holds their unique key: id, holder.
    skipped: list[tuple[str, str]] = field(default_factory=list)
