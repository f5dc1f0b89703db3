"""What a running task sees of its job: identity, attempt, cancellation, progress, a logger,
in a workflow its parents' results and a way to spawn children, and a transaction that
completes the job with the task's own writes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, overload

from typing_extensions import Unpack

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.jobs import JobStatus, NewJob
from jobhandler.model.options import EnqueueOptions, JobOptions, job_options

T = TypeVar("T")
P_contra = TypeVar("P_contra", contravariant=True)
NO_PARENTS: Mapping[str, Any] = MappingProxyType({})
_EVENTS = threading.Lock()  # makes each context's event once, for waiting threads


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """A task's logger: every record carries the job's fields (``job_id``, ``task``, ``queue``,
    ``attempt``), beside any ``extra`` the call gives (the call's win)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


@dataclass(frozen=True, slots=True)
class ParentFailed:
    """A parent that failed for good or was cancelled, as ``ctx.parent_results`` shows it to a
    job that runs anyway (``on_parent_failure="run"``): test with ``isinstance``."""

    key: str
    id: str
    status: JobStatus
    error: str | None = None


class _Clocked(Protocol):
    clock: Callable[[], float]


class Task(Protocol[P_contra]):
    """A task taking a ``P_contra``, as ``spawn`` needs it (model/tasks.Task, which imports
    this module): ``enqueue_many``'s parameter is what lets mypy check the payload."""

    @property
    def jobs(self) -> _Clocked: ...

    def enqueue_many(
        self, payloads: Sequence[P_contra], **options: Unpack[EnqueueOptions]
    ) -> Any: ...

    def dump_payload(self, value: Any) -> Any: ...

    def new_job(self, payload: Any, now: float, options: JobOptions = ...) -> NewJob: ...


class Spawner(Protocol):
    """How a running job stores a child (the worker's, or a process runner child's pipe)."""

    async def spawn(self, new: NewJob, key: str | None) -> str: ...

    def spawn_sync(self, new: NewJob, key: str | None) -> str: ...


class Transactor(Protocol):
    """How a running job completes inside a transaction of the store's database (the worker's
    plumbing, worker/transactions.py). ``result`` is read when the block ends."""

    def transaction(self, result: Callable[[], Any]) -> AbstractAsyncContextManager[Any]: ...

    def transaction_sync(self, result: Callable[[], Any]) -> AbstractContextManager[Any]: ...


NO_TRANSACTION = (
    "ctx.transaction() works only in a job a worker runs on its loop or in a thread: not in"
    " a process task (isolation='process'), whose child holds no connection to the store"
)


class JobContext:
    """Handed to a task that declares a parameter annotated ``JobContext``.

    It is safe to use from the task's own thread: ``cancelled`` is a thread-safe flag and
    ``progress()`` only records the newest value, which the worker writes in its next batch.
    """

    def __init__(
        self,
        job_id: str,
        task: str,
        attempt: int,
        on_progress: Callable[[str, int, Any], None],
        queue: str | None = None,
        parent_results: Mapping[str, Any] = NO_PARENTS,
        spawner: Spawner | None = None,
        transactor: Transactor | None = None,
    ) -> None:
        self.job_id = job_id
        self.task = task
        self.attempt = attempt
        self.queue = queue
        # In a workflow: each parent's key -> its result (the stored JSON, as ``job.result``),
        # or a ParentFailed. Read once before the run; empty for a job that runs after nothing.
        self.parent_results = parent_results
        self.spawner = spawner  # the worker's plumbing behind spawn (None: spawn refuses)
        self.transactor = transactor  # and behind transaction (None: it refuses)
        self._result: Any = None  # what a transaction completes the job with
        self._logger: JobLogger | None = None
        self._cancelled = False
        self._event: threading.Event | None = None  # made only for a task that waits on it
        self._on_progress = on_progress

    @property
    def logger(self) -> JobLogger:
        """Log through this: ``jobhandler.task.<task>``, each record with the job's fields.

        Made on first use: most runs never log, and a run is the worker's hot path.
        """
        if self._logger is None:
            fields = {"job_id": self.job_id, "task": self.task, "attempt": self.attempt}
            if self.queue is not None:
                fields["queue"] = self.queue
            self._logger = JobLogger(logging.getLogger(f"jobhandler.task.{self.task}"), fields)
        return self._logger

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or its lease lost: stop as soon as you can."""
        return self._cancelled

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block a thread task until cancelled (True) or ``timeout`` seconds passed (False)."""
        with _EVENTS:
            if self._event is None:
                self._event = threading.Event()
        # Published before the flag is read, and cancel() sets the flag before it reads the
        # event: one of the two sides always sees the other.
        if self._cancelled:
            self._event.set()
        return self._event.wait(timeout)

    def progress(self, value: Any) -> None:
        """Record progress (any JSON value, such as a fraction or ``{"done": 3, "of": 10}``)."""
        self._on_progress(self.job_id, self.attempt, value)

    def cancel(self) -> None:
        self._cancelled = True
        if (event := self._event) is not None:
            event.set()

    # -- completing in a transaction ----------------------------------------------------------

    def transaction(self, *, result: Any = None) -> AbstractAsyncContextManager[Any]:
        """``async with ctx.transaction() as conn:``: a connection to the store's database
        (psycopg ``AsyncConnection``, or ``sqlite3.Connection``) whose transaction also marks
        this job completed, fenced by its attempt: your writes and the completion commit
        together, or neither does. The job's result is ``result``, or what ``set_result``
        gave inside the block; what the task returns after it is not stored. Raises LeaseLost
        (and rolls back) if the run no longer holds the job. See docs/transactions.md."""
        self._result = result
        return self._need_transactor().transaction(self._committed_result)

    def transaction_sync(self, *, result: Any = None) -> AbstractContextManager[Any]:
        """``transaction`` for a ``def`` task: a blocking psycopg ``Connection`` or
        ``sqlite3.Connection``, for this thread."""
        self._result = result
        return self._need_transactor().transaction_sync(self._committed_result)

    def set_result(self, value: Any) -> None:
        """The result the open ``transaction`` completes the job with (inside its block)."""
        self._result = value

    def _committed_result(self) -> Any:
        return self._result

    def _need_transactor(self) -> Transactor:
        if self.transactor is None:
            raise JobHandlerError(NO_TRANSACTION)
        return self.transactor

    # -- spawning children (workflows) -------------------------------------------------------

    @overload
    async def spawn(
        self,
        task: Task[None],
        payload: None = None,
        *,
        key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str: ...
    @overload
    async def spawn(
        self,
        task: Task[T],
        payload: T,
        *,
        key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str: ...

    async def spawn(
        self, task: Task[Any], payload: Any = None, *, key: str | None = None, **options: Any
    ) -> str:
        """Submit a child of this job and return its id: the jobs that run after this one wait
        for the child too, and see its result in their ``parent_results`` under ``key``.

        ``key`` names the child (its id is derived from this job's and the key, so a retry of
        this job that spawns the same key finds the first child instead of making another);
        without one, each call makes a new child. Only in a job a worker runs.
        """
        return await self._need_spawner().spawn(self._child(task, payload, options), key)

    @overload
    def spawn_sync(
        self,
        task: Task[None],
        payload: None = None,
        *,
        key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str: ...
    @overload
    def spawn_sync(
        self,
        task: Task[T],
        payload: T,
        *,
        key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str: ...

    def spawn_sync(
        self, task: Task[Any], payload: Any = None, *, key: str | None = None, **options: Any
    ) -> str:
        """``spawn`` for a ``def`` task (thread or process isolation)."""
        return self._need_spawner().spawn_sync(self._child(task, payload, options), key)

    def _need_spawner(self) -> Spawner:
        if self.spawner is None:
            raise JobHandlerError("ctx.spawn works only in a job that a worker runs")
        return self.spawner

    @staticmethod
    def _child(task: Task[Any], payload: Any, options: dict[str, Any]) -> NewJob:
        if "debounce" in options or "debounce_max_wait" in options:
            raise JobHandlerError("debounce is not supported for a spawned child")
        return task.new_job(task.dump_payload(payload), task.jobs.clock(), job_options(options))


def parent_results(outcomes: Iterable[Any]) -> Mapping[str, Any]:
    """``ctx.parent_results`` from the store's ParentOutcomes, or from their JSON lists (key,
    id, status, result, error) in a process runner's request: each completed parent's result,
    a ParentFailed for the others."""
    shown: dict[str, Any] = {}
    for key, job_id, status, result, error in map(_fields, outcomes):
        if JobStatus(status) is JobStatus.COMPLETED:
            shown[key] = result
        else:
            shown[key] = ParentFailed(key, job_id, JobStatus(status), error)
    return MappingProxyType(shown)


def parents_as_json(results: Mapping[str, Any]) -> list[list[Any]]:
    """``parent_results`` as the JSON lists ``parent_results`` reads (for a process runner)."""
    return [
        [key, v.id, v.status.value, None, v.error]
        if isinstance(v, ParentFailed)
        else [key, "", JobStatus.COMPLETED.value, v, None]
        for key, v in results.items()
    ]


def _fields(outcome: Any) -> tuple[Any, ...]:
    if isinstance(outcome, list | tuple):
        return tuple(outcome)
    return (outcome.key, outcome.id, outcome.status, outcome.result, outcome.error)
