"""For the tests of code that uses Job Handler: a temporary store, eager mode, drain, asserts.

With pytest, the plugin (``jobhandler.testing.pytest_plugin``, registered on install) gives
fixtures; otherwise::

    async with testing.connected(app) as jobs:     # a fresh SQLite file, deleted afterwards
        await place_order(...)                     # your code enqueues
        jobs.assert_enqueued(send_receipt, {"email": "ann@example.test"})
        await jobs.drain()                         # runs them here, until none is left

``jobs.eager = True`` runs every job as it is enqueued (the handle ``enqueue`` returns is
then already finished). Runs go through the worker's own executor, so retries, timeouts,
``RetryLater`` and ``PermanentFailure`` end as they would in a worker; every task runs in this
process (``process`` isolation included), one job at a time.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobhandler.app import App
from jobhandler.model.context import JobContext
from jobhandler.model.jobs import Job, JobStatus, NewJob
from jobhandler.model.records import IdempotencyRecord, JobFilter
from jobhandler.model.tasks import Task
from jobhandler.model.workflows import WorkflowNode, WorkflowView
from jobhandler.settings import Settings
from jobhandler.worker.executor import Executor, Running, stopped_outcome
from jobhandler.worker.lineage import ServiceSpawner
from jobhandler.worker.runners import JobTimeout, Runner
from jobhandler.worker.transactions import RunTransactions

if TYPE_CHECKING:
    from jobhandler.model.connections import CallerConnection

WORKER_ID = "jobhandler-testing"
ANY: Any = object()  # assert_enqueued's "any payload"


def temporary_settings(directory: Path, **overrides: Any) -> Settings:
    """Settings for a fresh SQLite store in ``directory`` (durability off: it is thrown away)."""
    url = f"sqlite:///{directory / 'jobhandler-test.db'}"
    return Settings(**{"database_url": url, "sqlite_synchronous": "OFF", **overrides})


class JobHandlerTesting:
    """Watches one connected App: records what is enqueued, runs jobs here on demand."""

    def __init__(self, app: App, *, eager: bool = False) -> None:
        self.app = app
        self.eager = eager
        self.enqueued: list[Job] = []  # every job submitted through the App, in order
        self.progress: dict[str, Any] = {}  # the newest progress each job reported
        self._submits = app.service.submits
        self._insert = self._submits.insert
        self._workflows = app.service.workflows
        self._submit_nodes = self._workflows.submit_nodes
        # An instance attribute shadows the method for this connection only: each submit
        # (enqueue, enqueue_many, service.submits, the HTTP API, workflows) passes through here.
        vars(self._submits)["insert"] = self._insert_jobs
        vars(self._workflows)["submit_nodes"] = self._insert_workflow

    def close(self) -> None:
        vars(self._submits).pop("insert", None)
        vars(self._workflows).pop("submit_nodes", None)

    async def _insert_workflow(
        self, name: str, nodes: Sequence[WorkflowNode], now: float | None = None
    ) -> WorkflowView:
        view = await self._submit_nodes(name, nodes, now)
        self.enqueued.extend([await self.app.service.jobs.get(job.id) for job in view.jobs])
        if not self.eager:
            return view
        await self.drain(with_scheduled=True)
        return await self._workflows.get(view.id)

    async def _insert_jobs(
        self,
        new: list[NewJob],
        connection: CallerConnection | None = None,
        record: IdempotencyRecord | None = None,
    ) -> list[Job]:
        jobs = await self._insert(new, connection, record)
        self.enqueued.extend(jobs)
        if not self.eager or connection is not None:  # not committed yet: nothing to run
            return jobs
        await self.drain(with_scheduled=True)
        return [await self.app.service.jobs.get(job.id) for job in jobs]

    # -- running ---------------------------------------------------------------------------

    async def drain(
        self,
        *,
        queues: Sequence[str] | None = None,
        with_scheduled: bool = False,
        max_runs: int = 10_000,
    ) -> list[Job]:
        """Run due jobs in this process, one at a time, until none is left.

        With ``with_scheduled``, jobs due later (a ``delay``, a retry's backoff) run too: each
        is claimed as if its time had come. Returns every run's job as it then stood.
        """
        names = list(
            queues or sorted({*self.app.tasks.queues(), *(j.queue for j in self.enqueued)})
        )
        service = self.app.service
        executor = Executor(
            self.app.tasks,
            InlineRunner(),
            self.app.clock,
            self.app.events,
            service.workflows.parent_outcomes,
        )
        ran: list[Job] = []
        for _ in range(max_runs):
            at = await self._next_due(with_scheduled)
            claimed = await self.app.service.store.claim_jobs(names, WORKER_ID, 1, at, 3600.0)
            if not claimed:
                return ran
            ran.append(await self._run(executor, claimed[0]))
        raise AssertionError(f"drain ran {max_runs} jobs and the queue is still not empty")

    async def _next_due(self, with_scheduled: bool) -> float:
        now = self.app.clock()
        if not with_scheduled:
            return now
        page = await self.app.service.jobs.page(
            JobFilter(statuses=frozenset({JobStatus.SCHEDULED})), 1000
        )
        return max([now, min((j.run_at for j in page.jobs), default=now)])

    async def _run(self, executor: Executor, job: Job) -> Job:
        spawner = ServiceSpawner(self.app.service.workflows, job, self.app.run_sync)
        transactions = None
        if job.task in self.app.tasks:  # ctx.transaction(), on the test's store
            task = self.app.tasks.get(job.task)
            transactions = RunTransactions(self.app.service.store, job, task, self.app.clock)
        ctx = JobContext(
            *(job.id, job.task, job.attempt, self._record_progress),
            spawner=spawner,
            transactor=transactions,
        )
        entry = Running(job, ctx)
        entry.run = asyncio.create_task(executor.execute(entry))
        try:
            outcome = await entry.run
        except asyncio.CancelledError:
            outcome = stopped_outcome(entry)
        if transactions is not None and transactions.committed is not None:
            self.app.service.signals.finished([job.id])  # completed in the task's transaction
        elif outcome is not None:
            await self.app.service.store.finish_jobs([outcome], self.app.clock())
            self.app.service.signals.finished([job.id])
        return await self.app.service.jobs.get(job.id)

    def _record_progress(self, job_id: str, attempt: int, value: Any) -> None:
        self.progress[job_id] = value

    def drain_sync(self, **options: Any) -> list[Job]:
        """``drain`` for a test without an event loop (the App runs on its sync thread)."""
        return self.app.run_sync(self.drain(**options))

    # -- assertions ------------------------------------------------------------------------

    def jobs(self, task: str | Task[Any, Any] | None = None, payload: Any = ANY) -> list[Job]:
        """The enqueued jobs of ``task`` (any task when None) whose payload is ``payload``."""
        name = task.name if isinstance(task, Task) else task
        if isinstance(task, Task) and payload is not ANY:
            payload = task.dump_payload(payload)  # a model compares as the JSON it is stored as
        return [
            job
            for job in self.enqueued
            if (name is None or job.task == name) and (payload is ANY or job.payload == payload)
        ]

    def assert_enqueued(
        self,
        task: str | Task[Any, Any],
        payload: Any = ANY,
        *,
        count: int | None = None,
        **fields: Any,
    ) -> list[Job]:
        """Assert that such jobs were enqueued (exactly ``count`` of them, if given).

        ``fields`` match other Job fields, such as ``queue="mail"`` or ``priority=5``.
        """
        found = [j for j in self.jobs(task, payload) if _has(j, fields)]
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = "some" if count is None else str(count)
            raise AssertionError(
                f"expected {wanted} {_describe(task, payload, fields)} jobs, found {len(found)};"
                f" enqueued: {[(j.task, j.payload) for j in self.enqueued] or 'nothing'}"
            )
        return found

    def assert_not_enqueued(
        self, task: str | Task[Any, Any], payload: Any = ANY, **fields: Any
    ) -> None:
        self.assert_enqueued(task, payload, count=0, **fields)


class InlineRunner(Runner):
    """Runs every body in this process: async ones on the loop, the rest in a thread."""

    def __init__(self) -> None:  # no child processes: nothing of Runner's own is set up
        pass

    async def run(
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        args, kwargs = task.call_args(payload, ctx)
        if task.signature.is_async:
            body = task.fn(*args, **kwargs)
        else:
            body = asyncio.to_thread(task.fn, *args, **kwargs)
        try:
            value = await asyncio.wait_for(body, timeout)
        except TimeoutError:
            raise JobTimeout(timeout or 0.0) from None
        return task.dump_result(value)


def _has(job: Job, fields: dict[str, Any]) -> bool:
    return all(getattr(job, name) == value for name, value in fields.items())


def _describe(task: str | Task[Any, Any], payload: Any, fields: dict[str, Any]) -> str:
    name = task.name if isinstance(task, Task) else task
    shown = [repr(name)] + ([] if payload is ANY else [f"payload={payload!r}"])
    return " ".join(shown + [f"{k}={v!r}" for k, v in fields.items()])


@asynccontextmanager
async def connected(
    app: App, settings: Settings | None = None, *, eager: bool = False
) -> AsyncIterator[JobHandlerTesting]:
    """``app`` connected to a fresh SQLite store (or ``settings``'), watched by a kit."""
    with tempfile.TemporaryDirectory(prefix="jobhandler-") as directory:
        async with app.connected(settings or temporary_settings(Path(directory))):
            kit = JobHandlerTesting(app, eager=eager)
            try:
                yield kit
            finally:
                kit.close()


@contextmanager
def connected_sync(
    app: App, settings: Settings | None = None, *, eager: bool = False
) -> Iterator[JobHandlerTesting]:
    """``connected`` for tests without an event loop: the App runs on its sync thread."""
    with (
        tempfile.TemporaryDirectory(prefix="jobhandler-") as directory,
        app.connected_sync(settings or temporary_settings(Path(directory))),
    ):
        kit = JobHandlerTesting(app, eager=eager)
        try:
            yield kit
        finally:
            kit.close()
