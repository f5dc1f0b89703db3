"""Tasks: named functions whose first parameter's type is the payload contract. No I/O here.

``Task[T, R]`` is generic in its payload type ``T`` and its result type ``R`` (an ``async def``'s
awaited type), bound by ``App.task``'s overloads from the function's annotations, so mypy checks
``enqueue``'s payload and option keywords, and ``JobHandle[R].get_result()`` is typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

import pydantic
from pydantic_core import PydanticSerializationError
from typing_extensions import Unpack

from jobhandler.model.context import JobContext
from jobhandler.model.errors import InvalidPayload, InvalidResult, UnknownTask
from jobhandler.model.handles import JobHandle, JobSource
from jobhandler.model.jobs import DebouncedJob, NewJob, new_job_id
from jobhandler.model.options import (
    NO_OPTIONS,
    EnqueueOptions,
    Isolation,
    JobOptions,
    TaskOptions,
    WorkflowOptions,
    job_options,
)
from jobhandler.model.payloads import (
    Signature,
    each_json_errors,
    payload_errors,
    plain_shape,
    read_payload,
)
from jobhandler.model.validation import JsonLimits, check_name, json_errors, plain_json

if TYPE_CHECKING:
    from jobhandler.model.canvas import TaskSignature
    from jobhandler.model.connections import CallerConnection, SyncEnqueueOptions
    from jobhandler.model.jobs import Job
    from jobhandler.model.workflows import OnParentFailure
    from jobhandler.settings import Settings

# Kept importable from here: they were declared in this module before options.py.
__all__ = [
    "NO_OPTIONS",
    "EnqueueOptions",
    "Isolation",
    "JobOptions",
    "JobSink",
    "Signature",
    "Task",
    "TaskDecorator",
    "TaskOptions",
    "TaskRegistry",
    "job_options",
]

T = TypeVar("T")
R = TypeVar("R")


class JobSink(JobSource, Protocol):
    """Where a task's jobs go and are read back: the App's connected service (app.Connection),
    declared here as what a task needs of it."""

    clock: Callable[[], float]

    @property
    def settings(self) -> Settings: ...

    async def insert_jobs(
        self, new: list[NewJob], connection: CallerConnection | None = None
    ) -> list[Job]: ...


class Task(Generic[T, R]):
    """A registered task taking a ``T`` and returning an ``R``.

    Call it to run the function directly; ``enqueue`` submits a job (``enqueue_sync`` from code
    without an event loop).
    """

    def __init__(
        self, jobs: JobSink, name: str, fn: Callable[..., Any], options: TaskOptions
    ) -> None:
        self.jobs = jobs
        self.name = check_name(name, "task")
        self.fn = fn
        self.options = options
        check_name(options.queue, "queue")
        self.signature = Signature.of(fn)
        self._payload = pydantic.TypeAdapter(self._payload_type())
        self._result = pydantic.TypeAdapter(self.signature.result_type)
        many: Any = list[self._payload_type()]  # type: ignore[misc]
        self._payloads = pydantic.TypeAdapter(many)  # enqueue_many checks a list in one pass
        self._plain = plain_shape(self._payload_type())  # payloads that need no reading
        self.handle: type[JobHandle[R]] = JobHandle.for_task(self)  # what enqueue returns
        self._limits: tuple[object, JsonLimits] = (None, JsonLimits())  # see json_limits

    def _payload_type(self) -> Any:
        return self.signature.payload_type  # None (no payload) is a type pydantic knows too

    @property
    def isolation(self) -> Isolation:
        if self.options.isolation is not None:
            return self.options.isolation
        return "async" if self.signature.is_async else "thread"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    # -- payloads and results ------------------------------------------------------------

    def validate_payload(self, raw: Any) -> Any:
        """Check a JSON-shaped payload and return it normalised to JSON (what the store keeps)."""
        return self.dump_payload(raw)

    def load_payload(self, raw: Any) -> Any:
        """Turn a stored JSON payload into the Python value the function takes."""
        try:
            return self._payload.validate_python(raw)
        except pydantic.ValidationError as exc:
            raise InvalidPayload(self.name, payload_errors(exc)) from None

    def load_result(self, raw: Any) -> R:
        """Turn a stored JSON result back into the function's return type."""
        try:
            result: R = self._result.validate_python(raw)
        except pydantic.ValidationError as exc:
            problem = {"loc": ["result"], "msg": str(exc), "type": "result_type"}
            raise InvalidResult(self.name, problem) from None
        return result

    def dump_payload(self, value: Any) -> Any:
        """Turn a Python payload (a model, a dataclass, or its JSON form) into checked JSON.

        The value is checked before pydantic sees it (depth, NaN: pydantic would turn a NaN
        under ``Any`` into null) and its JSON form after (what a model held), by the same rules.
        """
        limits = self.json_limits()
        if self._is_plain(value, limits):
            return value
        if errors := json_errors(value, ["payload"], limits, strict=False):
            raise InvalidPayload(self.name, errors)
        read = read_payload(self._payload, value, self.name)
        dumped = self._payload.dump_python(read, mode="json")
        if errors := json_errors(dumped, ["payload"], limits):
            raise InvalidPayload(self.name, errors)
        return dumped

    def _is_plain(self, value: Any, limits: JsonLimits) -> bool:
        """Whether ``value`` is already its checked JSON form: one walk, no pydantic. Only a
        yes is taken; anything else goes through the full checks, which say what is wrong."""
        return self._plain is not None and self._plain(value) and plain_json(value, limits)

    def dump_result(self, value: Any) -> Any:
        """A run's return value as JSON; InvalidResult (the run fails) if it breaks the rules."""
        limits = self.json_limits()
        problems = json_errors(value, ["result"], limits, strict=False)
        try:
            dumped = None if problems else self._result.dump_python(value, mode="json")
        except PydanticSerializationError as exc:
            problems = [{"loc": ["result"], "msg": str(exc), "type": "json_type"}]
        problems = problems or json_errors(dumped, ["result"], limits)
        if problems:
            raise InvalidResult(self.name, problems[0])
        return dumped

    def json_limits(self) -> JsonLimits:
        settings = self.jobs.settings
        if self._limits[0] is not settings:  # read once per Settings, not once per submit
            limits = JsonLimits(settings.max_json_depth, settings.max_payload_bytes)
            self._limits = (settings, limits)
        return self._limits[1]

    def payload_schema(self) -> dict[str, Any]:
        return self._payload.json_schema()

    def result_schema(self) -> dict[str, Any]:
        return self._result.json_schema()

    def call_args(self, payload: Any, ctx: JobContext) -> tuple[list[Any], dict[str, Any]]:
        args = [] if self.signature.payload_type is None else [payload]
        kwargs = {self.signature.context_param: ctx} if self.signature.context_param else {}
        return args, kwargs

    # -- submitting ----------------------------------------------------------------------

    def new_job(self, payload: Any, now: float, options: JobOptions = NO_OPTIONS) -> NewJob:
        """A job of this task to store; ``payload`` is already checked and in its JSON form."""
        fields = self._job_fields(options, now)
        new = NewJob(new_job_id(), self.name, fields[0], payload, *fields[1:])
        return new if options.debounce is None else DebouncedJob.of(new, options.debounce_max_wait)

    def new_jobs(
        self, payloads: Sequence[Any], now: float, options: JobOptions = NO_OPTIONS
    ) -> list[NewJob]:
        """``new_job`` for each payload: the options are read once for the batch."""
        queue, *rest = self._job_fields(options, now)
        name = self.name
        new = [NewJob(new_job_id(), name, queue, payload, *rest) for payload in payloads]
        wait = options.debounce_max_wait  # debounced: the last of the batch's payloads wins
        return new if options.debounce is None else [DebouncedJob.of(j, wait) for j in new]

    def _job_fields(self, options: JobOptions, now: float) -> tuple[Any, ...]:
        """What the options decide of a NewJob, in field order (the queue before the payload)."""
        opts = self.options
        if options is NO_OPTIONS:  # enqueue without options: the task's own
            return (opts.queue, opts.priority, opts.max_attempts, opts.timeout, now, *(None,) * 4)
        return (
            options.queue or opts.queue,
            opts.priority if options.priority is None else options.priority,
            options.max_attempts or opts.max_attempts,
            options.timeout or opts.timeout,
            *(options.start_time(now), options.unique_key, options.unique_until(now)),
            *(None, options.concurrency_key),  # no trace_context: the service sets it
        )

    @overload
    async def enqueue(
        self: Task[None, R],
        payload: None = None,
        *,
        connection: CallerConnection | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobHandle[R]: ...

    @overload
    async def enqueue(
        self,
        payload: T,
        *,
        connection: CallerConnection | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobHandle[R]: ...

    async def enqueue(
        self,
        payload: Any = None,
        *,
        connection: CallerConnection | None = None,
        **options: Any,
    ) -> JobHandle[R]:
        """Submit one job of this task; returns its handle once it is committed.

        ``options`` override the task's: queue, priority, delay (s) or run_at, max_attempts,
        timeout; a wrong one raises InvalidOptions. With ``connection`` (your open connection to
        the store's database: psycopg async or blocking, or sqlite3 to the same file; another
        raises TypeError) the job is written inside your current transaction instead: it
        exists, and workers see it, only once you commit, and not at all if you roll back.
        """
        overrides = job_options(options)
        now = self.jobs.clock()
        new = self.new_job(self.dump_payload(payload), now, overrides)
        (job,) = await self.jobs.insert_jobs([new], connection)
        return self.handle.adopt(job, duplicate=job.id != new.id)

    async def enqueue_many(
        self, payloads: Sequence[T], **options: Unpack[EnqueueOptions]
    ) -> list[JobHandle[R]]:
        """Submit many jobs of this task in one transaction, all or none.

        The payloads are checked in one pass; an invalid one raises InvalidPayload naming its
        index, and nothing is stored. ``options`` apply to every job.
        """
        payloads, limits = list(payloads), self.json_limits()
        if all(self._is_plain(p, limits) for p in payloads):
            return await self._insert_many(payloads, options)
        if errors := each_json_errors(payloads, limits, strict=False):
            raise InvalidPayload(self.name, errors)
        read = read_payload(self._payloads, payloads, self.name, ["jobs"])
        checked = self._payloads.dump_python(read, mode="json")
        if errors := each_json_errors(checked, limits, strict=True):
            raise InvalidPayload(self.name, errors)
        return await self._insert_many(checked, options)

    async def _insert_many(self, checked: list[Any], options: Any) -> list[JobHandle[R]]:
        overrides = job_options(options)
        now = self.jobs.clock()
        new = self.new_jobs(checked, now, overrides)
        jobs = await self.jobs.insert_jobs(new)
        pairs = zip(jobs, new, strict=True)
        return [self.handle.adopt(job, duplicate=job.id != n.id) for job, n in pairs]

    @overload
    def s(
        self: Task[None, R],
        payload: None = None,
        *,
        key: str | None = None,
        on_parent_failure: OnParentFailure = "cancel",
        **options: Unpack[WorkflowOptions],
    ) -> TaskSignature[R]: ...

    @overload
    def s(
        self,
        payload: T,
        *,
        key: str | None = None,
        on_parent_failure: OnParentFailure = "cancel",
        **options: Unpack[WorkflowOptions],
    ) -> TaskSignature[R]: ...

    def s(
        self,
        payload: Any = None,
        *,
        key: str | None = None,
        on_parent_failure: OnParentFailure = "cancel",
        **options: Any,
    ) -> TaskSignature[R]:
        """A job for ``chain``/``group``/``chord``; parents' results come in ctx.parent_results."""
        from jobhandler.model.canvas import TaskSignature

        return TaskSignature(self, payload, key, on_parent_failure, options)

    # -- the same, for code without an event loop (jobhandler.sync) -----------------------

    @overload
    def enqueue_sync(
        self: Task[None, R], payload: None = None, **options: Unpack[SyncEnqueueOptions]
    ) -> JobHandle[R]: ...

    @overload
    def enqueue_sync(self, payload: T, **options: Unpack[SyncEnqueueOptions]) -> JobHandle[R]: ...

    def enqueue_sync(self, payload: Any = None, **options: Any) -> JobHandle[R]:
        """``enqueue`` for Flask, Django, scripts and threads: blocks until the job is committed
        (a ``sqlite3`` ``connection`` needs ``check_same_thread=False``: the app's loop uses it)."""
        return self.jobs.run_sync(self.enqueue(payload, **options))

    def enqueue_many_sync(
        self, payloads: Sequence[T], **options: Unpack[EnqueueOptions]
    ) -> list[JobHandle[R]]:
        return self.jobs.run_sync(self.enqueue_many(payloads, **options))


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` with options returns: binds ``T`` and ``R`` from the function.

    The same shapes as ``App.task``'s own overloads: an optional payload parameter, an optional
    JobContext after it, sync or async. A function of another shape is a ``Task[Any, Any]``.
    """

    @overload
    def __call__(self, fn: Callable[[JobContext], Awaitable[R]], /) -> Task[None, R]: ...
    @overload
    def __call__(self, fn: Callable[[], Awaitable[R]], /) -> Task[None, R]: ...
    @overload
    def __call__(self, fn: Callable[[T, JobContext], Awaitable[R]], /) -> Task[T, R]: ...
    @overload
    def __call__(self, fn: Callable[[T], Awaitable[R]], /) -> Task[T, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, fn: Callable[[JobContext], R], /) -> Task[None, R]: ...
    @overload
    def __call__(self, fn: Callable[[], R], /) -> Task[None, R]: ...
    @overload
    def __call__(self, fn: Callable[[T, JobContext], R], /) -> Task[T, R]: ...
    @overload
    def __call__(self, fn: Callable[[T], R], /) -> Task[T, R]: ...
    @overload
    def __call__(self, fn: Callable[..., Any], /) -> Task[Any, Any]: ...


class TaskRegistry:
    """The tasks one App knows, by name."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}

    def add(self, task: Task[Any, Any]) -> None:
        if task.name in self._tasks:
            raise ValueError(f"a task named {task.name!r} is already registered")
        self._tasks[task.name] = task

    def get(self, name: str) -> Task[Any, Any]:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def queues(self) -> list[str]:
        return sorted({t.options.queue for t in self})
