"""The Store protocol: the domain operations every backend provides, and nothing SQL-shaped.

Times are passed in (``now``) wherever they decide something, so tests own the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol

from jobhandler.model.jobs import Job, JobStatus, NewJob, Outcome
from jobhandler.model.records import (
    Attempt,
    BulkAction,
    BulkStep,
    FlowLimit,
    HeartbeatReply,
    IdempotencyRecord,
    JobFilter,
    JobRef,
    Page,
    QueueStats,
    ScheduleView,
    Throughput,
    WorkerInfo,
)
from jobhandler.model.tokens import Access, TokenInfo
from jobhandler.model.workflows import (
    NewWorkflow,
    ParentOutcome,
    WorkflowFilter,
    WorkflowMember,
    WorkflowPage,
    WorkflowView,
)


class Store(Protocol):
    """What the service and the workers need from durable storage."""

    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to run from several processes at once."""

    async def close(self) -> None: ...

    def skew(self) -> float:
        """Seconds to add to this host's clock to read the store's (model/clock.py)."""

    def disk_full(self) -> bool:
        """True while the store refuses new work for want of disk (a SQLite store's low-space
        state, docs/reliability.md); cancel, delete and prune still run."""

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

        ``connection``: the caller's open connection of this store's own driver to this store's
        database (psycopg Connection or AsyncConnection; sqlite3 Connection to the same file);
        the jobs are written inside the caller's transaction and exist only if the caller
        commits it. Any other connection raises TypeError, and nothing is written.

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
        """Delete up to ``limit`` expired unique windows, idempotency records older than
        ``idempotency_before`` and key rate buckets full again at ``now`` (docs/tenants.md),
        each; the most of one kind that went. Call again while it returns ``limit``."""

    async def bulk_step(
        self, action: BulkAction, where: JobFilter, after: int, limit: int, now: float
    ) -> BulkStep:
        """Apply ``action`` to the next ``limit`` jobs matching ``where`` past ``after`` (a
        job's seq), each through its guarded transition, in one short write. A retry leaves a
        job whose unique key another job holds (as ``retry_job`` refuses it) in ``skipped``."""

    async def get_job(self, job_id: str) -> Job | None: ...

    async def count_jobs(self, where: JobFilter, cap: int) -> int:
        """How many jobs ``where`` matches, counted no further than ``cap + 1``: an index walk
        of at most that many entries, for a count shown before a bulk action."""

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
        """Take up to ``limit`` due jobs (highest priority, then oldest) in one round trip.

        While keyed jobs (``concurrency_key``) are due in a queue, its keys (and its unkeyed
        jobs, as one more) take turns, from the one after the key served last; per-key limits
        hold over every claimer (docs/tenants.md; tests/store/test_keys.py)."""

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        """Apply each outcome as a fenced transition; True where it was applied."""

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A connection to the store's database apart from the store's own (psycopg
        AsyncConnection, or sqlite3 Connection; kept for the next task after) in a
        transaction: committed when the block ends, rolled back if it raises. A task's
        ``ctx.transaction()`` writes its completion in it (``finish_in``)."""

    def transaction_sync(self) -> AbstractContextManager[Any]:
        """``transaction`` for a thread: a blocking connection (psycopg Connection, or sqlite3
        Connection), used from the calling thread only."""

    async def finish_in(self, connection: object, outcome: Outcome, now: float) -> bool:
        """Apply one outcome as ``finish_jobs`` does, fenced the same way, inside the open
        transaction of ``connection`` (accepted as ``insert_jobs`` accepts one): it holds
        only if that transaction commits. True if it applied; on False the caller must roll
        back, as the run it ends no longer holds the job."""

    def finish_in_sync(self, connection: object, outcome: Outcome, now: float) -> bool:
        """``finish_in`` on a blocking connection, from the calling thread."""

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        """Extend the leases this worker still holds; report lost ones and cancel requests."""

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        """Which of these running jobs someone asked to cancel (a cheap read, polled often)."""

    async def record_progress(
        self, worker_id: str, progress: Sequence[tuple[JobRef, Any]], now: float
    ) -> None:
        """Write the newest progress of this worker's running jobs, fenced by attempt and
        worker (as outcomes are)."""

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

    async def prune(
        self,
        now: float,
        completed_age: float,
        failed_age: float,
        limit: int,
        own_ttl: Sequence[str] = (),
    ) -> int:
        """Delete up to ``limit`` terminal jobs that finished long enough ago; how many went.

        Completed jobs go once older than ``completed_age`` seconds, failed and cancelled ones
        once older than ``failed_age``. Call it again while it returns ``limit``. The completed
        jobs of the tasks named in ``own_ttl`` (outside workflows) are left alone: their task
        has a ``result_ttl`` of its own, and ``prune_task_results`` deletes them.
        """

    async def prune_task_results(self, task: str, before: float, limit: int) -> int:
        """Delete up to ``limit`` completed jobs of ``task`` (outside workflows) that finished
        before ``before``; how many went. Call it again while it returns ``limit``."""

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
        """Set (None: remove) the ``fields`` of ``limit`` (concurrency, rate_limit, and per
        key: key_concurrency, key_rate_limit) at run
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

    async def token_access(self) -> dict[str, Access]:
        """Every token's hash, scope and key: small, read whole by the API's short-lived cache."""

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

    # -- workflows (workflows.py) ------------------------------------------------------------

    async def insert_workflow(self, new: NewWorkflow) -> list[Job]:
        """Store a workflow, its jobs and their edges in one transaction; the jobs as stored.
        Raises workflows.WorkflowKeyHeld (a unique key held; nothing stored)."""

    async def spawn(self, parent: JobRef, member: WorkflowMember, now: float) -> Job | None:
        """Store a running job's child; the jobs that run after the parent wait for it too.
        None: ``parent``'s attempt no longer holds the job. A child spawned already (same id)
        is answered as it stands."""

    async def get_workflow(self, workflow_id: str) -> WorkflowView | None: ...

    async def page_workflows(
        self, where: WorkflowFilter, limit: int, cursor: str | None
    ) -> WorkflowPage:
        """Newest first, with each workflow's counts of jobs per status (no jobs)."""

    async def cancel_workflow(self, workflow_id: str, now: float) -> bool:
        """Mark it cancelled; its jobs are cancelled as a bulk cancel of ``workflow_id``."""

    async def parent_outcomes(self, job_id: str) -> list[ParentOutcome]:
        """What became of the parents of a workflow job."""

    async def prune_workflows(self, before: float) -> int:
        """Delete workflows created before ``before`` none of whose jobs are left."""

    async def import_workflows(self, workflows: Sequence[WorkflowView]) -> None:
        """Store workflows read from another store (a copy), as they were."""

    async def rebuild_edges(self) -> None:
        """After a copy: the edges between jobs, from each job's ``after``, settled where the
        parent has finished (or is gone)."""
