"""Tasks: named functions whose first parameter's type is the payload contract. No I/O here."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobhandler.context import JobContext
from jobhandler.errors import InvalidPayload, UnknownTask
from jobhandler.jobs import NewJob, new_job_id
from jobhandler.retry import RetryPolicy

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from jobhandler.app import App
    from jobhandler.jobs import Job

P = ParamSpec("P")
R = TypeVar("R")

Isolation = Literal["async", "thread", "process"]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    queue: str = "default"
    max_attempts: int = 3
    timeout: float | None = None
    priority: int = 0  # higher runs first
    isolation: Isolation | None = None  # None: "async" for async def, "thread" for def
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class JobOptions(BaseModel):
    """Per-job overrides of a task's options; None keeps the task's own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str | None = Field(default=None, min_length=1, max_length=200)
    priority: int | None = Field(default=None, ge=-1000, le=1000, description="higher runs first")
    delay: float | None = Field(
        default=None, ge=0, le=10 * 365 * 86400, description="seconds until due"
    )
    run_at: datetime | float | None = Field(
        default=None, description="when due: RFC 3339 or epoch seconds"
    )
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0, description="seconds one run may take")

    @model_validator(mode="after")
    def _one_start_time(self) -> JobOptions:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give either delay or run_at, not both")
        if isinstance(self.run_at, datetime) and self.run_at.tzinfo is None:
            raise ValueError("run_at needs a time zone, for example 2030-01-01T00:00:00Z")
        return self

    def start_time(self, now: float) -> float:
        if self.delay is not None:
            return now + self.delay
        if isinstance(self.run_at, datetime):
            return self.run_at.timestamp()
        if self.run_at is not None:
            return float(self.run_at)
        return now


NO_OPTIONS = JobOptions()


@dataclass(frozen=True, slots=True)
class Signature:
    """What a task function asks for, read once from its annotations."""

    payload_type: Any  # None when the task takes no payload
    result_type: Any
    context_param: str | None
    is_async: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Signature:
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters.values())
        context_param = next((p.name for p in params if hints.get(p.name) is JobContext), None)
        payload_params = [p for p in params if p.name != context_param]
        if len(payload_params) > 1:
            raise TypeError(
                f"task {fn.__qualname__} takes one payload parameter (and optionally a "
                f"JobContext), not {[p.name for p in payload_params]}"
            )
        payload_type: Any = None
        if payload_params:
            payload_type = hints.get(payload_params[0].name, Any)
        return cls(
            payload_type=payload_type,
            result_type=hints.get("return", Any),
            context_param=context_param,
            is_async=inspect.iscoroutinefunction(fn),
        )


class Task(Generic[P, R]):
    """A registered task. Call it to run the function directly; ``enqueue`` to submit a job."""

    def __init__(self, app: App, name: str, fn: Callable[P, R], options: TaskOptions) -> None:
        self.app = app
        self.name = name
        self.fn = fn
        self.options = options
        self.signature = Signature.of(fn)
        self._payload = pydantic.TypeAdapter(self._payload_type())
        self._result = pydantic.TypeAdapter(self.signature.result_type)
        many: Any = list[self._payload_type()]  # type: ignore[misc]
        self._payloads = pydantic.TypeAdapter(many)  # enqueue_many checks a list in one pass

    def _payload_type(self) -> Any:
        return self.signature.payload_type  # None (no payload) is a type pydantic knows too

    @property
    def isolation(self) -> Isolation:
        if self.options.isolation is not None:
            return self.options.isolation
        return "async" if self.signature.is_async else "thread"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    # -- payloads and results ------------------------------------------------------------

    def validate_payload(self, raw: Any) -> Any:
        """Check a JSON-shaped payload and return it normalised to JSON (what the store keeps)."""
        return self._payload.dump_python(self.load_payload(raw), mode="json")

    def load_payload(self, raw: Any) -> Any:
        """Turn a stored JSON payload into the Python value the function takes."""
        try:
            return self._payload.validate_python(raw)
        except pydantic.ValidationError as exc:
            raise InvalidPayload(self.name, _field_errors(exc)) from None

    def dump_payload(self, value: Any) -> Any:
        """Turn a Python payload (a model, a dataclass, or its JSON form) into JSON."""
        return self._payload.dump_python(self.load_payload(value), mode="json")

    def dump_result(self, value: Any) -> Any:
        return self._result.dump_python(value, mode="json")

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
        opts = self.options
        return NewJob(
            id=new_job_id(),
            task=self.name,
            queue=options.queue or opts.queue,
            payload=payload,
            priority=opts.priority if options.priority is None else options.priority,
            max_attempts=options.max_attempts or opts.max_attempts,
            timeout=options.timeout or opts.timeout,
            run_at=options.start_time(now),
        )

    async def enqueue(
        self,
        payload: Any = None,
        *,
        connection: AsyncConnection[Any] | None = None,
        **options: Any,
    ) -> Job:
        """Submit one job of this task; returns it once it is committed.

        ``options`` override the task's: queue, priority, delay (s) or run_at, max_attempts,
        timeout. With ``connection`` (PostgreSQL only: your open psycopg connection to the
        jobs database) the job is written inside your current transaction instead: it
        exists, and workers see it, only once you commit, and not at all if you roll back.
        """
        overrides = JobOptions(**options) if options else NO_OPTIONS
        now = self.app.clock()
        new = self.new_job(self.dump_payload(payload), now, overrides)
        (job,) = await self.app.insert_jobs([new], connection)
        return job

    async def enqueue_many(self, payloads: Sequence[Any], **options: Any) -> list[Job]:
        """Submit many jobs of this task in one transaction, all or none.

        The payloads are checked in one pass; an invalid one raises InvalidPayload naming its
        index, and nothing is stored. ``options`` apply to every job.
        """
        try:
            checked = self._payloads.dump_python(
                self._payloads.validate_python(list(payloads)), mode="json"
            )
        except pydantic.ValidationError as exc:
            raise InvalidPayload(self.name, _field_errors(exc, ["jobs"])) from None
        overrides = JobOptions(**options) if options else NO_OPTIONS
        now = self.app.clock()
        return await self.app.insert_jobs([self.new_job(p, now, overrides) for p in checked])


def _field_errors(
    exc: pydantic.ValidationError, prefix: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Errors with their place: ``payload`` and the field path (for a batch: jobs, index)."""

    def place(loc: tuple[str | int, ...]) -> list[str | int]:
        if prefix:  # a list of payloads: loc starts with the index
            return [*prefix, loc[0], "payload", *loc[1:]]
        return ["payload", *loc]

    return [
        {"loc": place(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


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
