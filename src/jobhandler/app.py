"""The App: where tasks are registered, and the one service every frontend calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import ConfigDict, Field

from jobhandler.model import records
from jobhandler.model.context import JobContext
from jobhandler.model.errors import InvalidJob, InvalidTransition, JobNotFound, StoreUnavailable
from jobhandler.model.jobs import Job, JobStatus, NewJob
from jobhandler.model.records import JobFilter, Page, QueueStats, WorkerInfo
from jobhandler.model.retry import RetryPolicy
from jobhandler.model.schedules import ScheduleRegistry
from jobhandler.model.tasks import (
    Isolation,
    JobOptions,
    Task,
    TaskDecorator,
    TaskOptions,
    TaskRegistry,
)
from jobhandler.model.tokens import Scope, TokenInfo, new_token
from jobhandler.model.validation import NAME_MAX_LENGTH, NAME_PATTERN
from jobhandler.observe.events import Events
from jobhandler.observe.logs import log_job_events
from jobhandler.observe.tracing import trace_job_events
from jobhandler.service.bulk import BulkDone, run_bulk
from jobhandler.service.flow import Flow, QueueMethods
from jobhandler.service.group_commit import GroupCommit
from jobhandler.service.live import JobFeed
from jobhandler.service.schedules import ScheduleMethods
from jobhandler.service.submits import Submits, checked_jobs
from jobhandler.service.waiting import JobWatch
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store
from jobhandler.sync import SyncBridge

if TYPE_CHECKING:
    from psycopg import AsyncConnection

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 1000


class SubmitRequest(JobOptions):
    """One job to submit. ``task`` None means the app's default task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payload: Any = Field(
        default=None, description="the task's input, checked against its payload type"
    )
    task: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=NAME_PATTERN,
        description="the app's default task when absent",
    )


class App(QueueMethods, ScheduleMethods):
    """Register tasks with ``@app.task``; connect with ``async with app.connected(settings)``."""

    def __init__(
        self,
        *,
        default_task: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tasks = TaskRegistry()
        self.periodics = ScheduleRegistry()  # @app.periodic; run by worker/scheduler.py
        self.default_task = default_task
        self.clock = clock
        self._store: Store | None = None
        self._settings: Settings | None = None
        # In-process signals: a worker in this process wakes at once instead of polling.
        self._on_submit: list[Callable[[], None]] = []
        self._on_cancel: list[Callable[[str], None]] = []
        # Requests waiting for jobs to finish: woken by this process's workers, or by one
        # shared read of every waited job a few times a second.
        self._watch = JobWatch(lambda ids: self.store.job_statuses(ids))
        self.live = JobFeed(lambda since, n: self.store.changed_jobs(since, n), clock)  # SSE
        self.on_submit(self.live.kick)
        # A lost store fails every submit in a merged write; any other error is retried one
        # submit at a time, so a bad row fails only its own request.
        self._group_commit = GroupCommit(self._write, fail_all=(StoreUnavailable,))
        self.flow = Flow(self)  # queue pause and limits (flow.py)
        # Job lifecycle events (observe.py): logged here; metrics and traces subscribe too.
        self.events = Events()
        log_job_events(self.events)
        trace_job_events(self.events)
        self.sync = SyncBridge(self.connected)  # the sync API (jobhandler.sync)
        self.submits = Submits(self)  # submits that say what they created (idempotency.py)

    # -- registering tasks -----------------------------------------------------------------

    # T and R from the function: the shapes TaskDecorator lists (tasks.py), in the same order.
    @overload
    def task(self, fn: Callable[[JobContext], Awaitable[R]]) -> Task[None, R]: ...
    @overload
    def task(self, fn: Callable[[], Awaitable[R]]) -> Task[None, R]: ...
    @overload
    def task(self, fn: Callable[[T, JobContext], Awaitable[R]]) -> Task[T, R]: ...
    @overload
    def task(self, fn: Callable[[T], Awaitable[R]]) -> Task[T, R]: ...  # type: ignore[overload-overlap]
    @overload
    def task(self, fn: Callable[[JobContext], R]) -> Task[None, R]: ...
    @overload
    def task(self, fn: Callable[[], R]) -> Task[None, R]: ...
    @overload
    def task(self, fn: Callable[[T, JobContext], R]) -> Task[T, R]: ...
    @overload
    def task(self, fn: Callable[[T], R]) -> Task[T, R]: ...
    @overload
    def task(self, fn: Callable[..., Any]) -> Task[Any, Any]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 3,
        timeout: float | None = None,
        priority: int = 0,
        isolation: Isolation | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        rate_limit: str | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 3,
        timeout: float | None = None,
        priority: int = 0,
        isolation: Isolation | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        rate_limit: str | None = None,
    ) -> Any:
        """Register a function as a task. Its first parameter's type is the payload type."""
        options = TaskOptions(
            queue=queue,
            max_attempts=max_attempts,
            timeout=timeout,
            priority=priority,
            isolation=isolation,
            retry=retry or RetryPolicy(),
        )

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            registered: Task[Any, Any] = Task(self, name or f.__name__, f, options)
            if concurrency is not None or rate_limit is not None:  # flow.py: all workers
                self.flow.declare("task", registered.name, concurrency, rate_limit)
            self.tasks.add(registered)
            return registered

        return register(fn) if fn is not None else register

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the app is not connected: use `async with app.connected(...)`")
        return self._store

    @property
    def settings(self) -> Settings:
        return self._settings or Settings()

    @asynccontextmanager
    async def connected(self, settings: Settings | None = None) -> AsyncIterator[App]:
        settings = settings or Settings()
        store = open_store(settings)
        try:
            if settings.migrate_on_start:
                await store.migrate()
            self._store, self._settings = store, settings
            self.sync.loop = asyncio.get_running_loop()  # where *_sync calls from threads run
            yield self
        finally:
            self._store, self.sync.loop = None, None
            await store.close()

    @contextmanager
    def connected_sync(self, settings: Settings | None = None) -> Iterator[App]:
        """``connected`` for code without an event loop: runs on a thread of its own (sync.py)."""
        self.sync.connect(settings)
        try:
            yield self
        finally:
            self.sync.close()

    def run_sync(self, awaitable: Awaitable[T]) -> T:
        """Run one of this App's coroutines from sync code: ``app.run_sync(app.get_job(id))``."""
        return self.sync.run(awaitable)

    # -- in-process signals ----------------------------------------------------------------

    def on_submit(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._on_submit.append(callback)
        return lambda: self._on_submit.remove(callback)

    def on_cancel(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._on_cancel.append(callback)
        return lambda: self._on_cancel.remove(callback)

    def notify_finished(self, job_ids: Iterable[str] | None = None) -> None:
        """Called by a worker in this process after it wrote outcomes: wakes the requests
        waiting for those jobs (for every job when ``job_ids`` is None)."""
        self._watch.wake(job_ids)

    # -- the service -----------------------------------------------------------------------

    def new_job(self, request: SubmitRequest, now: float) -> NewJob:
        """Check a request against its task and turn it into a job to store (no I/O)."""
        name = request.task or self.default_task
        if name is None:
            message = "task is required: this app has no default task"
            raise InvalidJob(message, [{"loc": ["task"], "msg": message, "type": "missing"}])
        task = self.tasks.get(name)
        return task.new_job(task.validate_payload(request.payload), now, request)

    async def submit(
        self, request: SubmitRequest, *, connection: AsyncConnection[Any] | None = None
    ) -> Job:
        """Submit one job; it is committed when this returns. Raises InvalidJob.

        With ``connection`` (PostgreSQL only) the job joins that connection's transaction and
        is committed, or rolled back, with it.
        """
        now = self.clock()
        (job,) = await self.insert_jobs([self.new_job(request, now)], connection)
        return job

    async def submit_many(self, requests: Sequence[SubmitRequest]) -> list[Job]:
        """Submit up to MAX_BATCH jobs, all or none. Raises InvalidJob naming every bad one."""
        return await self.insert_jobs(checked_jobs(self.new_job, requests, self.clock(), MAX_BATCH))

    async def insert_jobs(
        self, new: list[NewJob], connection: AsyncConnection[Any] | None = None
    ) -> list[Job]:
        """Store checked jobs (from ``new_job`` or ``Task.new_job``) and wake local workers."""
        with self.events.submitting(new) as new:  # a tracer stamps its trace context in
            if connection is not None:  # the caller's transaction: theirs to commit
                jobs = await self._write(new, connection)
            else:
                jobs = await self._group_commit.submit(new)
        self.events.submitted(jobs)
        for wake in self._on_submit:
            wake()
        return jobs

    async def _write(
        self, new: list[NewJob], connection: AsyncConnection[Any] | None = None
    ) -> list[Job]:
        records = self.submits.records_for(new)  # idempotency records ride in its transaction
        return await self.store.insert_jobs(new, self.clock(), connection, records)

    async def get_job(self, job_id: str) -> Job:
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def list_jobs(
        self, where: JobFilter | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """Up to ``limit`` jobs, newest first; fewer when they would pass the settings'
        ``max_page_bytes`` (see ``Store.list_jobs``)."""
        return await self.store.list_jobs(
            where or JobFilter(), limit, cursor, max_bytes=self.settings.max_page_bytes
        )

    async def wait_for_job(self, job_id: str, timeout: float) -> Job:
        """The job once it is terminal, or as it stands after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._watch.watching(job_id) as woken:  # before the read: no wake-up is missed
            while True:
                woken.clear()
                job = await self.get_job(job_id)
                remaining = deadline - time.monotonic()
                if job.status.terminal or remaining <= 0:
                    return job
                with suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), remaining)

    async def cancel_job(self, job_id: str, wait: float = 0.0) -> Job:
        """Cancel a job; a processing one is stopped by its worker, waited for up to ``wait`` s."""
        job = await self.store.request_cancel(job_id, self.clock())
        if job.status.terminal:
            self._watch.wake([job_id])
        if job.status is JobStatus.PROCESSING:
            for notify in self._on_cancel:
                notify(job_id)
            if wait > 0:
                job = await self.wait_for_job(job_id, wait)
        return job

    async def retry_job(self, job_id: str) -> Job:
        job = await self.store.retry_job(job_id, self.clock())
        for wake in self._on_submit:
            wake()
        return job

    async def bulk_action(self, action: records.BulkAction, where: JobFilter) -> BulkDone:
        """Cancel, retry or delete every job ``where`` matches, in short batches: how many it
        changed, and those a retry skipped because another job holds their unique key."""
        return await run_bulk(self, action, where)

    async def delete_job(self, job_id: str) -> None:
        if not await self.store.delete_job(job_id):
            job = await self.get_job(job_id)  # raises JobNotFound when it is not there at all
            raise InvalidTransition("only a finished job can be deleted", job.status)

    async def workers(self) -> list[WorkerInfo]:
        return await self.store.list_workers()

    async def job_attempts(self, job_id: str) -> list[records.Attempt]:
        """Every run of the job, oldest first, the one in progress last. Raises JobNotFound."""
        return await self.store.job_attempts(job_id)

    async def throughput(self, since: float) -> list[records.Throughput]:
        """Jobs finished per minute since ``since`` (epoch seconds), by status."""
        return await self.store.throughput(since)

    async def queue_stats(self) -> list[QueueStats]:
        return await self.flow.queue_stats()  # with pause, limits, served (flow.py)

    # -- API tokens ------------------------------------------------------------------------

    async def create_token(self, scope: str, name: str | None = None) -> tuple[TokenInfo, str]:
        """Make and store a token; the token itself is returned here and nowhere else.

        Raises ValueError for a bad scope or name, tokens.DuplicateToken for a taken name.
        """
        info, token = new_token(scope, name, self.clock())
        await self.store.add_token(info)
        return info, token

    async def list_tokens(self) -> list[TokenInfo]:
        return await self.store.list_tokens()

    async def revoke_token(self, name: str) -> bool:
        return await self.store.revoke_token(name)

    async def token_scopes(self) -> dict[str, Scope]:
        """Every token's hash and scope (empty: the API is open)."""
        return await self.store.token_scopes()

    async def touch_tokens(self, hashes: Sequence[str]) -> None:
        await self.store.touch_tokens(hashes, self.clock())


def load_app(ref: str) -> App:
    """Import an App from ``module:attribute`` (the ``--app`` option)."""
    import importlib

    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--app must look like module:attribute, not {ref!r}")
    app = getattr(importlib.import_module(module_name), attr, None)
    if not isinstance(app, App):
        raise ValueError(f"{ref!r} is not a jobhandler App")
    return app
