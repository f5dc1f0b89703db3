"""The Store protocol: the domain operations every backend provides, and nothing SQL-shaped.

Times are passed in (``now``) wherever they decide something, so tests own the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from jobhandler.errors import JobHandlerError
from jobhandler.jobs import Job, JobStatus, NewJob, Outcome
from jobhandler.tokens import Scope, TokenInfo


@dataclass(frozen=True, slots=True)
class JobFilter:
    statuses: frozenset[JobStatus] = frozenset()
    queue: str | None = None
    task: str | None = None
    created_before: float | None = None


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
    # Flow control (filled in by the service, flow.py): paused, the limits that hold, and
    # whether a live worker serves the queue.
    paused: bool = False
    concurrency: int | None = None
    rate_limit: str | None = None
    served: bool = False


@dataclass(frozen=True, slots=True)
class FlowLimit:
    """What may start of a queue's or a task's jobs, over all workers: nothing while paused
    (queues only), at most ``concurrency`` at once, at most ``rate_limit`` ("100/s")."""

    scope: Literal["queue", "task"]
    name: str
    paused: bool = False
    concurrency: int | None = None
    rate_limit: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job. ``finished_at`` and ``outcome`` are None while it runs; ``outcome`` is
    the status the run left the job in (``scheduled``: to be retried; ``queued``: handed back)."""

    attempt: int
    worker_id: str | None
    started_at: float | None
    finished_at: float | None
    outcome: str | None
    error: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class Throughput:
    """Jobs that finished in one minute (``minute``: its start, epoch seconds), by status."""

    minute: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A periodic schedule as stored (``periodic.py``): its declaration, whether it is paused,
    and its run times (``last_job_id``: the job its last run made)."""

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


BulkAction = Literal["cancel", "retry", "delete"]


@dataclass(frozen=True, slots=True)
class BulkStep:
    changed: int  # jobs this step changed
    next_after: int | None  # where the next step starts; None: no job is left to look at
    flagged: list[str] = field(default_factory=list)  # running jobs asked to stop
    # Jobs a retry left as they were because another job holds their unique key: id, holder.
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Store(Protocol):
    """What the service and the workers need from durable storage."""

    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to run from several processes at once."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    async def insert_jobs(
        self,
        jobs: Sequence[NewJob],
        now: float,
        connection: object | None = None,
        idempotency: Sequence[IdempotencyRecord] = (),
    ) -> list[Job]:
        """Insert all the jobs in one transaction, or none of them.

        ``connection``: the caller's open connection of this store's own driver; the jobs are
        written inside the caller's transaction and exist only if the caller commits it. A store
        that cannot join a caller's transaction raises TypeError when one is given.

        A job whose unique key is held (see ``Job.unique_key``) is not created: its place in
        the answer holds the job that holds the key (a different id). ``idempotency``: records
        written in the same transaction; a record's key taken raises IdempotencyKeyTaken and
        stores nothing.
        """

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        """The record of an idempotent submit, if one was stored (and not yet pruned)."""

    async def idempotent_jobs(self, record: IdempotencyRecord) -> list[Job | None]:
        """Each job of a recorded submit as it stands now: the job created, or for a
        duplicate the job that holds its key; None where that job is gone."""

    async def prune_keys(self, now: float, idempotency_before: float, limit: int) -> int:
        """Delete up to ``limit`` expired unique windows and idempotency records older than
        ``idempotency_before``, each; how many went. Call again while it returns ``limit``."""

    async def bulk_step(
        self, action: BulkAction, where: JobFilter, after: int, limit: int, now: float
    ) -> BulkStep:
        """Apply ``action`` to the next ``limit`` jobs matching ``where`` past ``after`` (a
        job's seq), each through its guarded transition, in one short write. A retry leaves a
        job whose unique key another job holds (as ``retry_job`` refuses it) in ``skipped``."""

    async def get_job(self, job_id: str) -> Job | None: ...

    async def list_jobs(
        self,
        where: JobFilter,
        limit: int,
        cursor: str | None,
        oldest_first: bool = False,
        max_bytes: int | None = None,
    ) -> Page:
        """Newest first (or oldest first), keyset-paginated.

        ``max_bytes``: the page also ends early, before the job that would take the text of
        the jobs' large columns (payload, result, error, traceback, progress) past this many
        bytes, counting ``rows.ITEM_OVERHEAD`` for each job; it always holds at least one.
        Rows past that are never read whole.
        """

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """The status of each of these jobs that exists, in one cheap read (for waiters)."""

    async def import_jobs(self, jobs: Sequence[Job]) -> None:
        """Insert whole jobs as they stand in another store (statuses, attempts, results)."""

    async def delete_job(self, job_id: str) -> bool:
        """Delete a terminal job; False when there is no such terminal job."""

    async def claim_jobs(
        self, queues: Sequence[str], worker_id: str, limit: int, now: float, lease: float
    ) -> list[Job]:
        """Take up to ``limit`` due jobs (highest priority, then oldest) in one round trip."""

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        """Apply each outcome as a fenced transition; True where it was applied."""

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        """Extend the leases this worker still holds; report lost ones and cancel requests."""

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        """Which of these running jobs someone asked to cancel (a cheap read, polled often)."""

    async def record_progress(self, progress: Sequence[tuple[JobRef, Any]], now: float) -> None:
        """Write the newest progress of running jobs, fenced by attempt."""

    async def request_cancel(self, job_id: str, now: float) -> Job:
        """Cancel a waiting job at once, or flag a processing one for its worker to stop.

        Raises JobNotFound, or InvalidTransition for a terminal job.
        """

    async def retry_job(self, job_id: str, now: float) -> Job:
        """Queue a failed or cancelled job again. Raises JobNotFound or InvalidTransition, or
        UniqueKeyHeld (an InvalidTransition) while another job holds its unique key as it would
        against a submit of it: a waiting or running job with the key, or its window's job."""

    async def expired_jobs(self, now: float, limit: int) -> list[Job]:
        """Processing jobs whose lease ran out before ``now``."""

    async def prune(self, now: float, completed_age: float, failed_age: float, limit: int) -> int:
        """Delete up to ``limit`` terminal jobs that finished long enough ago; how many went.

        Completed jobs go once older than ``completed_age`` seconds, failed and cancelled ones
        once older than ``failed_age``. Call it again while it returns ``limit``.
        """

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        """Start delivering wake-ups from other processes; returns an async function to stop.

        ``on_submit()``: jobs may have become due; ``on_cancel(job_id)``: someone asked to
        cancel that processing job. Hints only, possibly coalesced, duplicated or lost (a store
        may deliver none at all): polling stays the truth. Callbacks run on the event loop.
        """

    async def register_worker(self, info: WorkerInfo) -> None: ...

    async def deregister_worker(self, worker_id: str) -> None: ...

    async def list_workers(self) -> list[WorkerInfo]: ...

    async def expire_leases_of(self, worker_id: str, now: float) -> list[Job]:
        """End now the leases of a worker whose process is gone; its running jobs."""
        ...

    async def queue_stats(self, now: float | None = None) -> list[QueueStats]:
        """Job counts by queue and status (kept as jobs move, not counted per call), and when
        each queue's longest-waiting due job became due (by ``now``; None: the host's clock)."""

    async def job_attempts(self, job_id: str) -> list[Attempt]:
        """Every run of the job, oldest first, the one in progress last. Raises JobNotFound."""

    async def throughput(self, since: float) -> list[Throughput]:
        """Jobs finished per minute by status since ``since``, oldest minute first."""

    async def changed_jobs(self, since: float, limit: int) -> list[Job]:
        """Up to ``limit`` jobs whose ``updated_at`` is after ``since``, oldest change first."""

    # -- flow control (store/queues.py) -------------------------------------------------------

    async def flow_limits(self) -> list[FlowLimit]:
        """Every queue and task with a pause or a limit (or a limit declared in code)."""

    async def set_paused(self, queue: str, paused: bool, now: float) -> FlowLimit:
        """Pause or resume a queue: a paused queue's jobs are not claimed."""

    async def set_limits(self, limit: FlowLimit, now: float, fields: frozenset[str]) -> FlowLimit:
        """Set (None: remove) the ``fields`` of ``limit`` (concurrency, rate_limit) at run
        time; they hold until changed again or until the code declares other values."""

    async def declare_limits(self, limits: Sequence[FlowLimit], now: float) -> None:
        """The limits the code declares: each replaces the one in force where the code's
        declaration changed since the last (a value set at run time stays otherwise)."""

    # -- leader election (one holder per role, by lease) --------------------------------------

    async def try_lead(self, role: str, holder: str, now: float, ttl: float) -> bool:
        """Make ``holder`` the leader of ``role`` until ``now + ttl`` if the role is free, its
        lease ran out, or ``holder`` leads it already; whether ``holder`` leads now.

        Call it again well within ``ttl`` to stay the leader. One guarded write: of several
        callers racing for a free role exactly one wins.
        """

    async def resign(self, role: str, holder: str) -> None:
        """Give up ``role`` at once if ``holder`` leads it, so another may take over now."""

    # -- API tokens (only hashes are stored) -------------------------------------------------

    async def add_token(self, token: TokenInfo) -> None:
        """Store a new token. Raises tokens.DuplicateToken when its name is taken."""

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, oldest first."""

    async def revoke_token(self, name: str) -> bool:
        """Delete the token of that name; False when there is none."""

    async def token_scopes(self) -> dict[str, Scope]:
        """Every token's hash and scope: small, read whole by the API's short-lived cache."""

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        """Record that these tokens were used at ``now``."""

    # -- periodic schedules (store/schedules.py) -------------------------------------------

    async def sync_schedules(self, schedules: Sequence[ScheduleView], now: float) -> None:
        """Store the schedules an app declares. A stored one keeps its pause state and last run,
        and its next run too unless its cron, every or timezone changed."""

    async def list_schedules(self) -> list[ScheduleView]:
        """Every stored schedule, by name."""

    async def fire_schedule(
        self, name: str, expected: float, job: NewJob, next_run_at: float, now: float
    ) -> Job | None:
        """Insert ``job`` (due at its ``run_at``) for the schedule's run and move its next run
        to ``next_run_at``, in one transaction, only if its next run is still ``expected``, it
        is not paused and ``job.run_at`` is after its last run: so one job per due time, however
        many schedulers race. The job stored, or None when it was not."""

    async def advance_schedule(
        self, name: str, expected: float, next_run_at: float, now: float
    ) -> bool:
        """Move the next run past a due time without a job, if it is still ``expected``."""

    async def pause_schedule(self, name: str, paused: bool, now: float) -> ScheduleView:
        """Pause or resume a schedule. Raises periodic.ScheduleNotFound."""
