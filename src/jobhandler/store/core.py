"""The store: one core that holds a dialect object and implements the Store protocol once for
both dialects (contract.py).

Composed, not inherited. The core holds a dialect (dialect.py: connections, named queries,
values as parameters, a unit of work run in one transaction) and one object per resource, each
holding that same dialect: jobs and the user's actions on them (jobs.py), the worker's runs
(runs.py), submits with unique keys and idempotency records (uniqueness.py), bulk actions
(bulk.py), queue flow control and the claim (queues.py), schedules, workers and leader leases,
tokens, stats, attempts and the live feed's changes. Each Store method below hands the call to
the resource that owns it, so this file is also the map of where an operation lives. A resource
that needs another is given it (a claim needs the flow limits, an outcome tells the stats), and
what every resource shares is in resource.py.

A dialect keeps what is truly its own: the SQLite thread, file watcher and direct writes, the
PostgreSQL pool, LISTEN/NOTIFY and the database clock. ``SQLiteStore`` and ``PostgresStore``
(sqlite/dialect.py, postgres/dialect.py) are this core over their dialect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

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
from jobhandler.store.attempts import Attempts
from jobhandler.store.bulk import Bulk
from jobhandler.store.changes import Changes
from jobhandler.store.dialect import Dialect, Step
from jobhandler.store.jobs import Jobs
from jobhandler.store.queues import Flow
from jobhandler.store.runs import Runs
from jobhandler.store.schedules import Schedules
from jobhandler.store.stats import Stats
from jobhandler.store.tokens import Tokens
from jobhandler.store.uniqueness import Submits
from jobhandler.store.workers import Workers
from jobhandler.store.workflows import Workflows


class StoreCore:
    """The Store protocol over a dialect object."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.stats = Stats(dialect)
        self.flow = Flow(dialect)
        self.jobs = Jobs(dialect)
        self.runs = Runs(dialect, self.flow, self.stats)
        self.submits = Submits(dialect)
        self.bulk = Bulk(dialect)
        self.attempts = Attempts(dialect)
        self.changes = Changes(dialect)
        self.workers = Workers(dialect)
        self.tokens = Tokens(dialect)
        self.schedules = Schedules(dialect)
        self.workflows = Workflows(dialect)

    # -- the dialect's own -----------------------------------------------------------------

    async def migrate(self) -> None:
        await self.dialect.migrate()

    async def close(self) -> None:
        await self.dialect.close()

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        return await self.dialect.listen(on_submit, on_cancel)

    def skew(self) -> float:
        return self.dialect.skew()

    def disk_full(self) -> bool:
        return False  # a SQLite store says otherwise in its low-space state (sqlite/space.py)

    async def ping(self) -> None:
        await self.dialect.run([Step(self.dialect.queries["ping"], {})], False)

    async def schema_version(self) -> int:
        """The newest migration applied."""
        query = self.dialect.queries["schema_version"]
        (done,) = await self.dialect.run([Step(query, {})], False)
        (row,) = done.rows
        return int(row["v"])

    # -- submits (uniqueness.py) -----------------------------------------------------------

    async def insert_jobs(
        self,
        jobs: Sequence[NewJob],
        now: float,
        connection: object | None = None,
        idempotency: Sequence[IdempotencyRecord] = (),
    ) -> list[Job]:
        return await self.submits.insert_jobs(jobs, now, connection, idempotency)

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        return await self.submits.get_idempotency(owner, key)

    async def idempotent_jobs(self, record: IdempotencyRecord) -> list[Job | None]:
        return await self.submits.idempotent_jobs(record)

    async def prune_keys(self, now: float, idempotency_before: float, limit: int) -> int:
        return await self.submits.prune_keys(now, idempotency_before, limit)

    # -- jobs and the user's actions (jobs.py, bulk.py, attempts.py, changes.py) -----------

    async def import_jobs(self, jobs: Sequence[Job]) -> None:
        await self.jobs.import_jobs(jobs)

    async def get_job(self, job_id: str) -> Job | None:
        return await self.jobs.get_job(job_id)

    async def list_jobs(
        self,
        where: JobFilter,
        limit: int,
        cursor: str | None,
        oldest_first: bool = False,
        max_bytes: int | None = None,
    ) -> Page:
        return await self.jobs.list_jobs(where, limit, cursor, oldest_first, max_bytes)

    async def count_jobs(self, where: JobFilter, cap: int) -> int:
        return await self.jobs.count_jobs(where, cap)

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return await self.jobs.job_statuses(job_ids)

    async def delete_job(self, job_id: str) -> bool:
        return await self.jobs.delete_job(job_id)

    async def prune(
        self,
        now: float,
        completed_age: float,
        failed_age: float,
        limit: int,
        own_ttl: Sequence[str] = (),
    ) -> int:
        return await self.jobs.prune(now, completed_age, failed_age, limit, own_ttl)

    async def prune_task_results(self, task: str, before: float, limit: int) -> int:
        return await self.jobs.prune_task_results(task, before, limit)

    async def request_cancel(self, job_id: str, now: float) -> Job:
        return await self.jobs.request_cancel(job_id, now)

    async def retry_job(self, job_id: str, now: float) -> Job:
        return await self.jobs.retry_job(job_id, now)

    async def bulk_step(
        self, action: BulkAction, where: JobFilter, after: int, limit: int, now: float
    ) -> BulkStep:
        return await self.bulk.bulk_step(action, where, after, limit, now)

    async def job_attempts(self, job_id: str) -> list[Attempt]:
        return await self.attempts.job_attempts(job_id)

    async def changed_jobs(self, since: float, limit: int) -> list[Job]:
        return await self.changes.changed_jobs(since, limit)

    # -- the worker's side (runs.py) -------------------------------------------------------

    async def claim_jobs(
        self, queues: Sequence[str], worker_id: str, limit: int, now: float, lease: float
    ) -> list[Job]:
        return await self.runs.claim_jobs(queues, worker_id, limit, now, lease)

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        return await self.runs.finish_jobs(outcomes, now)

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return self.dialect.transaction()

    def transaction_sync(self) -> AbstractContextManager[Any]:
        return self.dialect.transaction_sync()

    async def finish_in(self, connection: object, outcome: Outcome, now: float) -> bool:
        return await self.runs.finish_in(connection, outcome, now)

    def finish_in_sync(self, connection: object, outcome: Outcome, now: float) -> bool:
        return self.runs.finish_in_sync(connection, outcome, now)

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        return await self.runs.heartbeat(worker_id, running, now, lease)

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        return await self.runs.cancel_requests(worker_id, running)

    async def record_progress(
        self, worker_id: str, progress: Sequence[tuple[JobRef, Any]], now: float
    ) -> None:
        await self.runs.record_progress(worker_id, progress, now)

    async def expired_jobs(self, now: float, limit: int) -> list[Job]:
        return await self.runs.expired_jobs(now, limit)

    # -- workers and leader leases (workers.py) --------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        await self.workers.register_worker(info)

    async def deregister_worker(self, worker_id: str) -> None:
        await self.workers.deregister_worker(worker_id)

    async def list_workers(self) -> list[WorkerInfo]:
        return await self.workers.list_workers()

    async def expire_leases_of(self, worker_id: str, now: float) -> list[Job]:
        return await self.workers.expire_leases_of(worker_id, now)

    async def try_lead(self, role: str, holder: str, now: float, ttl: float) -> bool:
        return await self.workers.try_lead(role, holder, now, ttl)

    async def resign(self, role: str, holder: str) -> None:
        await self.workers.resign(role, holder)

    # -- stats (stats.py) ------------------------------------------------------------------

    async def queue_stats(self, now: float | None = None) -> list[QueueStats]:
        return await self.stats.queue_stats(now)

    async def throughput(self, since: float) -> list[Throughput]:
        return await self.stats.throughput(since)

    # -- flow control (queues.py) ----------------------------------------------------------

    async def flow_limits(self) -> list[FlowLimit]:
        return await self.flow.flow_limits()

    async def set_paused(self, queue: str, paused: bool, now: float) -> FlowLimit:
        return await self.flow.set_paused(queue, paused, now)

    async def set_limits(self, limit: FlowLimit, now: float, fields: frozenset[str]) -> FlowLimit:
        return await self.flow.set_limits(limit, now, fields)

    async def declare_limits(self, limits: Sequence[FlowLimit], now: float) -> None:
        await self.flow.declare_limits(limits, now)

    # -- API tokens (tokens.py) ------------------------------------------------------------

    async def add_token(self, token: TokenInfo) -> None:
        await self.tokens.add_token(token)

    async def list_tokens(self) -> list[TokenInfo]:
        return await self.tokens.list_tokens()

    async def revoke_token(self, name: str) -> bool:
        return await self.tokens.revoke_token(name)

    async def token_access(self) -> dict[str, Access]:
        return await self.tokens.token_access()

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        await self.tokens.touch_tokens(hashes, now)

    # -- periodic schedules (schedules.py) -------------------------------------------------

    async def sync_schedules(self, schedules: Sequence[ScheduleView], now: float) -> None:
        await self.schedules.sync_schedules(schedules, now)

    async def list_schedules(self) -> list[ScheduleView]:
        return await self.schedules.list_schedules()

    async def fire_schedule(
        self, name: str, expected: float, job: NewJob, next_run_at: float, now: float
    ) -> Job | None:
        return await self.schedules.fire_schedule(name, expected, job, next_run_at, now)

    async def advance_schedule(
        self, name: str, expected: float, next_run_at: float, now: float
    ) -> bool:
        return await self.schedules.advance_schedule(name, expected, next_run_at, now)

    async def pause_schedule(self, name: str, paused: bool, now: float) -> ScheduleView:
        return await self.schedules.pause_schedule(name, paused, now)

    # -- workflows ---------------------------------------------------------------------------

    async def insert_workflow(self, new: NewWorkflow) -> list[Job]:
        return await self.workflows.insert_workflow(new)

    async def spawn(self, parent: JobRef, member: WorkflowMember, now: float) -> Job | None:
        return await self.workflows.spawn(parent, member, now)

    async def get_workflow(self, workflow_id: str) -> WorkflowView | None:
        return await self.workflows.get_workflow(workflow_id)

    async def page_workflows(
        self, where: WorkflowFilter, limit: int, cursor: str | None
    ) -> WorkflowPage:
        return await self.workflows.page_workflows(where, limit, cursor)

    async def cancel_workflow(self, workflow_id: str, now: float) -> bool:
        return await self.workflows.cancel_workflow(workflow_id, now)

    async def parent_outcomes(self, job_id: str) -> list[ParentOutcome]:
        return await self.workflows.parent_outcomes(job_id)

    async def prune_workflows(self, before: float) -> int:
        return await self.workflows.prune_workflows(before)

    async def import_workflows(self, workflows: Sequence[WorkflowView]) -> None:
        await self.workflows.import_workflows(workflows)

    async def rebuild_edges(self) -> None:
        await self.workflows.rebuild_edges()
