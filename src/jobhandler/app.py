"""The App: what your code touches. Declare tasks, periodic jobs and queue limits; connect; run.

Connecting makes the service (service/): the one object every frontend calls. The App hands it
out as ``app.service``; nothing the App makes holds the App itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from jobhandler.model.builder import Workflow
from jobhandler.model.clock import StoreClock, no_skew
from jobhandler.model.context import JobContext
from jobhandler.model.jobs import Job, NewJob
from jobhandler.model.limits import DeclaredLimits
from jobhandler.model.retry import RetryPolicy
from jobhandler.model.schedules import Missed, PeriodicDecorator, ScheduleRegistry, Timing
from jobhandler.model.schedules import periodic_decorator as _periodic_decorator
from jobhandler.model.tasks import Isolation, Task, TaskDecorator, TaskOptions, TaskRegistry
from jobhandler.model.workflows import WorkflowNode, WorkflowView
from jobhandler.observe.events import Events
from jobhandler.observe.logs import log_job_events
from jobhandler.observe.tracing import trace_job_events
from jobhandler.service import Service
from jobhandler.settings import Settings
from jobhandler.store import open_store
from jobhandler.sync import SyncBridge

if TYPE_CHECKING:
    from jobhandler.model.connections import CallerConnection

T = TypeVar("T")
R = TypeVar("R")


class App:
    """Register tasks with ``@app.task``; connect with ``async with app.connected(settings)``."""

    def __init__(
        self,
        *,
        default_task: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tasks = TaskRegistry()
        self.periodics = ScheduleRegistry()  # @app.periodic; fired by worker/schedules.py
        self.limits = DeclaredLimits()  # app.queue(...) and the tasks' own limits
        self.default_task = default_task
        self.clock = StoreClock(clock)  # every part of the App reads time here (model/clock.py)
        # Job lifecycle events (observe/): logged here; metrics and traces subscribe too.
        self.events = Events()
        log_job_events(self.events)
        trace_job_events(self.events)
        self.sync = SyncBridge(self.connected)  # the sync API (jobhandler.sync)
        self._connection = Connection(self.clock, self.sync)  # tasks and handles reach it here

    # -- declaring -------------------------------------------------------------------------

    # T and R from the function: the shapes TaskDecorator lists (model/tasks.py), in order.
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
        soft_timeout: float | None = None,
        result_ttl: float | None = None,
        priority: int = 0,
        isolation: Isolation | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        key_concurrency: int | None = None,
        key_rate_limit: str | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 3,
        timeout: float | None = None,
        soft_timeout: float | None = None,
        result_ttl: float | None = None,
        priority: int = 0,
        isolation: Isolation | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        key_concurrency: int | None = None,
        key_rate_limit: str | None = None,
    ) -> Any:
        """Register a function as a task. Its first parameter's type is the payload type."""
        options = TaskOptions(
            queue=queue,
            max_attempts=max_attempts,
            timeout=timeout,
            soft_timeout=soft_timeout,
            result_ttl=result_ttl,
            priority=priority,
            isolation=isolation,
            retry=retry or RetryPolicy(),
        )

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            registered: Task[Any, Any] = Task(self._connection, name or f.__name__, f, options)
            limits = {"concurrency": concurrency, "rate_limit": rate_limit}
            limits |= {"key_concurrency": key_concurrency, "key_rate_limit": key_rate_limit}
            if any(v is not None for v in limits.values()):  # over all workers
                self.limits.declare("task", registered.name, **limits)
            self.tasks.add(registered)
            return registered

        return register(fn) if fn is not None else register

    def periodic(
        self,
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        name: str | None = None,
        payload: Any = None,
        missed: Missed = "skip",
    ) -> PeriodicDecorator:
        """Run a task on a schedule: ``cron`` (five fields, in ``timezone``) or ``every`` N
        seconds, with a fixed ``payload`` (checked now against the task's payload type).

        Put it on ``@app.task`` (or on a plain function, registered as a task). ``name``: the
        schedule's, the task's by default. ``missed``: due times that passed while nothing ran
        are dropped ("skip") or run once ("catch_up"). Raises ValueError or InvalidPayload.
        """
        timing = Timing(cron, every, timezone)
        return _periodic_decorator(self.task, self.periodics, timing, name, payload, missed)

    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        key_concurrency: int | None = None,
        key_rate_limit: str | None = None,
    ) -> None:
        """Declare a queue's limits, over all workers: at most ``concurrency`` of its jobs run
        at once, at most ``rate_limit`` ("100/s", "10/min", "5/h") start; ``key_*``: the same
        for each ``concurrency_key`` (docs/tenants.md). A worker writes them to the store when
        it starts; a run-time change holds until the code changes."""
        limits = {"concurrency": concurrency, "rate_limit": rate_limit}
        limits |= {"key_concurrency": key_concurrency, "key_rate_limit": key_rate_limit}
        self.limits.declare("queue", name, **limits)

    def workflow(self, name: str) -> Workflow:
        """A workflow to build: ``node = wf.add(task, payload, after=[...])`` per job, then
        ``handle = await wf.enqueue()`` stores them all at once (model/builder.py)."""
        return Workflow(self._connection, name)

    # -- connecting ------------------------------------------------------------------------

    @property
    def service(self) -> Service:
        """What the frontends call (service/): jobs, submits, flow, schedules, tokens."""
        return self._connection.current()

    @property
    def settings(self) -> Settings:
        return self._connection.settings

    @asynccontextmanager
    async def connected(self, settings: Settings | None = None) -> AsyncIterator[App]:
        settings = settings or Settings()
        store = open_store(settings)
        try:
            if settings.migrate_on_start:
                await store.migrate()
            self.clock.skew = store.skew
            self._connection.service = Service(
                store,
                settings,
                tasks=self.tasks,
                limits=self.limits,
                clock=self.clock,
                events=self.events,
                default_task=self.default_task,
            )
            self.sync.loop = asyncio.get_running_loop()  # where *_sync calls from threads run
            yield self
        finally:
            self._connection.service, self.sync.loop = None, None
            self.clock.skew = no_skew
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
        """Run a coroutine on this App's loop from sync code:
        ``app.run_sync(app.service.jobs.get(job_id))``."""
        return self.sync.run(awaitable)


class Connection:
    """An App's service as its tasks and job handles reach it (model/tasks.JobSink): they
    enqueue, read and wait through this, and hold neither the App nor a store."""

    def __init__(self, clock: Callable[[], float], sync: SyncBridge) -> None:
        self.clock = clock
        self.service: Service | None = None  # set while the App is connected
        self._sync = sync

    def current(self) -> Service:
        if self.service is None:
            raise RuntimeError("the app is not connected: use `async with app.connected(...)`")
        return self.service

    @property
    def settings(self) -> Settings:
        return Settings() if self.service is None else self.service.settings

    async def insert_jobs(
        self, new: list[NewJob], connection: CallerConnection | None = None
    ) -> list[Job]:
        return await self.current().submits.insert(new, connection)

    async def get_job(self, job_id: str) -> Job:
        return await self.current().jobs.get(job_id)

    async def wait_for_job(self, job_id: str, timeout: float) -> Job:
        return await self.current().jobs.wait(job_id, timeout)

    async def cancel_job(self, job_id: str, wait: float = 0.0) -> Job:
        return await self.current().jobs.cancel(job_id, wait)

    async def submit_workflow(self, name: str, nodes: list[WorkflowNode]) -> WorkflowView:
        return await self.current().workflows.submit_nodes(name, nodes)

    async def get_workflow(self, workflow_id: str) -> WorkflowView:
        return await self.current().workflows.get(workflow_id)

    async def cancel_workflow(self, workflow_id: str) -> WorkflowView:
        return await self.current().workflows.cancel(workflow_id)

    def run_sync(self, awaitable: Awaitable[T]) -> T:
        return self._sync.run(awaitable)


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
