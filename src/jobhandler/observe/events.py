"""Job lifecycle events, in this process: what logs, metrics and traces are written from.

The App (a submit), the executor (a run starts), the completer (a run's outcome was written)
and the rescuer (an expired lease was taken back) each emit a typed :class:`JobEvent` to their
App's :class:`Events`. Logging (logs.py), Prometheus metrics (metrics.py) and OpenTelemetry
(tracing.py) subscribe to it, so each is written once and nothing on the hot path knows any
of them. With no subscriber an event is not even built.

Besides events, a subscriber may wrap two moments that need their own context rather than a
notice afterwards: a submit (a tracer opens a span and stamps its trace context into the new
jobs) and a run (a tracer makes the run's span current while the task body runs).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from enum import StrEnum
from typing import NamedTuple

from jobhandler.model.jobs import Job, NewJob, Outcome, Transition

log = logging.getLogger("jobhandler.observe")
_NOTHING = contextlib.nullcontext()


class Kind(StrEnum):
    """What happened to a job. A run ends in one of the kinds after ``STARTED``."""

    SUBMITTED = "submitted"
    STARTED = "started"
    COMPLETED = "completed"
    RETRIED = "retried"  # the run failed; the job runs again after ``delay`` seconds
    FAILED = "failed"  # no attempt left, or the task said never to retry
    TIMED_OUT = "timed_out"  # ran past its timeout; ``delay`` is set when it will run again
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # a graceful stop handed the run back, its attempt not counted
    RESCUED = "rescued"  # its worker stopped heartbeating; ``delay`` unless it failed for good


RUN_ENDS = frozenset(Kind) - {Kind.SUBMITTED, Kind.STARTED}


class JobEvent(NamedTuple):
    """One thing that happened to one job. Times are seconds; ``at`` is the epoch time.

    A named tuple: made twice per run on the worker's hot path, where a frozen dataclass
    costs several times as much to build.
    """

    kind: Kind
    job_id: str
    task: str
    queue: str
    attempt: int
    at: float
    duration: float | None = None  # how long the run took (a run's end)
    wait: float | None = None  # how long the job waited, due, before this run (started)
    delay: float | None = None  # seconds until it runs again (retried, timed out, rescued)
    error: str | None = None
    worker_id: str | None = None
    trace_context: str | None = None  # the W3C traceparent stored with the job


Subscriber = Callable[[JobEvent], None]
# Wraps a submit: given the jobs about to be written, a context in which they are written,
# yielding the jobs to write instead (a tracer stamps its trace context into them).
SubmitHook = Callable[[list[NewJob]], AbstractContextManager[list[NewJob]]]
# Wraps the body of one run (entered and left in the run's own asyncio task).
RunHook = Callable[[Job], AbstractContextManager[object]]


class Events:
    """One App's event hook. Subscribers are called in the emitting code's thread and task;
    they must be quick and must not raise (one that does is logged and skipped)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._submit_hooks: list[SubmitHook] = []
        self._run_hooks: list[RunHook] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every event from now on; returns how to stop."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def around_submit(self, hook: SubmitHook) -> Callable[[], None]:
        self._submit_hooks.append(hook)
        return lambda: self._submit_hooks.remove(hook)

    def around_run(self, hook: RunHook) -> Callable[[], None]:
        self._run_hooks.append(hook)
        return lambda: self._run_hooks.remove(hook)

    def emit(self, event: JobEvent) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # an observer's bug must not fail a submit or lose an outcome
                log.exception("job event subscriber %r failed", subscriber)

    # -- the moments emitters report -------------------------------------------------------

    def submitting(self, new: list[NewJob]) -> AbstractContextManager[list[NewJob]]:
        """Around writing ``new``: yields the jobs to write (stamped by the submit hooks)."""
        hooks = self._submit_hooks
        if not hooks:
            return contextlib.nullcontext(new)
        if len(hooks) == 1:
            return hooks[0](new)
        return self._all_submit_hooks(new)

    @contextlib.contextmanager
    def _all_submit_hooks(self, new: list[NewJob]) -> Iterator[list[NewJob]]:
        with ExitStack() as stack:
            for hook in self._submit_hooks:
                new = stack.enter_context(hook(new))
            yield new

    def submitted(self, jobs: Sequence[Job]) -> None:
        if self._subscribers:
            for job in jobs:
                self.emit(_event(Kind.SUBMITTED, job, job.created_at))

    def started(self, job: Job, now: float) -> None:
        """A run begins: ``started``, with how long the job waited since it was due."""
        if self._subscribers:
            wait = max(0.0, now - job.run_at)
            self.emit(_event(Kind.STARTED, job, now, wait=wait, worker_id=job.worker_id))

    def running(self, job: Job) -> AbstractContextManager[object]:
        """The context to run ``job``'s body in (a tracer's span): entered and left in the
        run's own asyncio task."""
        hooks = self._run_hooks
        if not hooks:
            return _NOTHING
        if len(hooks) == 1:
            return hooks[0](job)
        stack = ExitStack()
        for hook in hooks:
            stack.enter_context(hook(job))
        return stack

    def run_ended(
        self, job: Job, outcome: Outcome, now: float, duration: float | None, timed_out: bool
    ) -> None:
        """A run's outcome was written: one event saying how the run ended."""
        if not self._subscribers:
            return
        kind = ENDS[outcome.transition]
        if timed_out and kind in (Kind.RETRIED, Kind.FAILED):
            kind = Kind.TIMED_OUT
        self.emit(_ended(kind, job, outcome, now, duration))

    def rescued(self, job: Job, outcome: Outcome, now: float) -> None:
        """The rescuer wrote ``outcome`` for a job whose lease expired."""
        if self._subscribers:
            kind = Kind.CANCELLED if outcome.transition is Transition.ABORT else Kind.RESCUED
            self.emit(_ended(kind, job, outcome, now, None))


ENDS = {
    Transition.COMPLETE: Kind.COMPLETED,
    Transition.RETRY_LATER: Kind.RETRIED,
    Transition.FAIL: Kind.FAILED,
    Transition.ABORT: Kind.CANCELLED,
    Transition.RELEASE: Kind.INTERRUPTED,
    Transition.RESCUE: Kind.RESCUED,
    Transition.RESCUE_FAIL: Kind.RESCUED,
}


def _event(
    kind: Kind, job: Job, at: float, wait: float | None = None, worker_id: str | None = None
) -> JobEvent:
    return JobEvent(
        kind,
        job.id,
        job.task,
        job.queue,
        job.attempt,
        at,
        wait=wait,
        worker_id=worker_id,
        trace_context=job.trace_context,
    )


def _ended(kind: Kind, job: Job, outcome: Outcome, now: float, duration: float | None) -> JobEvent:
    delay = None if outcome.run_at is None else max(0.0, outcome.run_at - now)
    return JobEvent(
        kind,
        job.id,
        job.task,
        job.queue,
        job.attempt,
        now,
        duration=duration,
        delay=delay,
        error=outcome.error if kind is not Kind.COMPLETED else None,
        worker_id=job.worker_id,
        trace_context=job.trace_context,
    )
