"""The executor: runs one claimed job through its runner and says how it ended, as an Outcome.

It never touches the store, so what a task's result, error, timeout, retry or cancel turns into
is decided (and tested) here without one; the completer writes the outcome.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from jobhandler.model.context import JobContext, parent_results
from jobhandler.model.errors import JobHandlerError, PermanentFailure, RetryLater
from jobhandler.model.jobs import Job, Outcome, Transition
from jobhandler.model.records import JobRef
from jobhandler.model.redact import clean
from jobhandler.model.retry import RetryPolicy
from jobhandler.model.tasks import Task, TaskRegistry
from jobhandler.observe.events import Events
from jobhandler.worker.lineage import ParentReader
from jobhandler.worker.runners import ChildFailed, JobTimeout, Runner


class StopReason(Enum):
    CANCEL = "cancel"  # a user asked: the job ends cancelled
    LOST = "lost"  # the lease went to someone else: write nothing
    SHUTDOWN = "shutdown"  # graceful stop ran out of time: hand the job back


@dataclass
class Running:
    """One run in flight. ``stop_reason`` is set by whoever stops it, before cancelling it."""

    job: Job
    ctx: JobContext
    stop_reason: StopReason | None = None
    run: asyncio.Task[Outcome | None] = field(init=False)
    duration: float | None = None  # seconds the body ran, once it ended (None: it never began)
    timed_out: bool = False

    @property
    def ref(self) -> JobRef:
        return JobRef(self.job.id, self.job.attempt)

    def stop(self, reason: StopReason) -> None:
        self.stop_reason = reason
        self.ctx.cancel()
        self.run.cancel()


def stopped_outcome(entry: Running) -> Outcome | None:
    """What a run stopped on purpose ends as; None when it was lost, or not stopped by us."""
    job = entry.job
    if entry.stop_reason is StopReason.CANCEL:
        return Outcome(job.id, job.attempt, Transition.ABORT, error="cancelled")
    if entry.stop_reason is StopReason.SHUTDOWN:
        return Outcome(job.id, job.attempt, Transition.RELEASE)
    return None


class Executor:
    """``await executor.execute(entry)``: the job's Outcome, or None when nothing may be written."""

    def __init__(
        self,
        tasks: TaskRegistry,
        runner: Runner,
        clock: Callable[[], float],
        events: Events | None = None,
        parents: ParentReader | None = None,
    ) -> None:
        self.tasks = tasks
        self.runner = runner
        self.clock = clock
        self.events = events or Events()
        self.parents = parents  # a workflow job's parents' outcomes (service.workflows)

    async def execute(self, entry: Running) -> Outcome | None:
        job = entry.job
        fail = _Failure(job, self.clock)
        try:
            task = self.tasks.get(job.task)
            payload = task.load_payload(job.payload)
        except JobHandlerError as exc:  # nothing to run: never import by name from the store
            return fail.permanently(str(exc), "")
        try:
            result = await self._run(entry, task, payload)
        except asyncio.CancelledError:
            if entry.stop_reason in (StopReason.CANCEL, StopReason.SHUTDOWN):
                return stopped_outcome(entry)
            raise  # lost, or the loop itself is going away: write nothing
        except RetryLater as exc:
            return fail.retry_at(str(exc), "", self.clock() + exc.delay)
        except PermanentFailure as exc:
            return fail.permanently(str(exc) or "failed", traceback.format_exc())
        except JobTimeout as exc:
            entry.timed_out = True
            return fail.by_policy(str(exc), "", task.options.retry)
        except ChildFailed as exc:
            return fail.by_policy(str(exc), exc.traceback, task.options.retry)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return fail.by_policy(message, traceback.format_exc(), task.options.retry)
        return Outcome(job.id, job.attempt, Transition.COMPLETE, result=result)

    async def _run(self, entry: Running, task: Task[Any, Any], payload: Any) -> Any:
        """The body, inside the run hooks (a tracer's span), timed."""
        # One read, before the body; none for a body that takes no context (it cannot see
        # them): the 10,000 jobs after a fan-out's root would each pay a round trip.
        if entry.job.parents and task.signature.context_param and self.parents is not None:
            entry.ctx.parent_results = parent_results(await self.parents(entry.job))
        self.events.started(entry.job, self.clock())
        started = time.perf_counter()
        try:
            with self.events.running(entry.job):
                return await self.runner.run(task, payload, entry.ctx, entry.job.timeout)
        finally:
            entry.duration = time.perf_counter() - started


class _Failure:
    """The outcome of a failed run: retried by the policy, or failed for good.

    Every error and traceback passes through ``clean`` here: task text may quote the store URL
    (shown over the API, so its password goes), or hold NUL or lone surrogates (which a store
    cannot write, and which would fail the whole completion batch).
    """

    def __init__(self, job: Job, clock: Callable[[], float]) -> None:
        self.job = job
        self.clock = clock

    def permanently(self, error: str, trace: str) -> Outcome:
        return Outcome(
            self.job.id,
            self.job.attempt,
            Transition.FAIL,
            error=clean(error),
            traceback=clean(trace),
        )

    def retry_at(self, error: str, trace: str, when: float) -> Outcome:
        if not self.job.attempts_left:
            return self.permanently(error, trace)
        return Outcome(
            self.job.id,
            self.job.attempt,
            Transition.RETRY_LATER,
            error=clean(error),
            traceback=clean(trace),
            run_at=when,
        )

    def by_policy(self, error: str, trace: str, policy: RetryPolicy) -> Outcome:
        when = policy.decide(self.job, self.clock())
        if when is None:
            return self.permanently(error, trace)
        return self.retry_at(error, trace, when)
