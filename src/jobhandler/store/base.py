"""The Store protocol: the domain operations every backend provides, and nothing SQL-shaped.

Times are passed in (``now``) wherever they decide something, so tests own the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobhandler.jobs import Job, JobStatus, NewJob, Outcome
from jobhandler.tokens import Scope, TokenInfo


@dataclass(frozen=True, slots=True)
class JobFilter:
    statuses: frozenset[JobStatus] = frozenset()
    queue: str | None = None
    task: str | None = None


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


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    counts: dict[str, int] = field(default_factory=dict)


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


class Store(Protocol):
    """What the service and the workers need from durable storage."""

    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to run from several processes at once."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    async def insert_jobs(
        self, jobs: Sequence[NewJob], now: float, connection: object | None = None
    ) -> list[Job]:
        """Insert all the jobs in one transaction, or none of them.

        ``connection``: the caller's open connection of this store's own driver; the jobs are
        written inside the caller's transaction and exist only if the caller commits it. A store
        that cannot join a caller's transaction raises TypeError when one is given.
        """

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
        """Queue a failed or cancelled job again. Raises JobNotFound or InvalidTransition."""

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

    async def queue_stats(self) -> list[QueueStats]: ...

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
