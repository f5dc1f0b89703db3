"""Tasks: named functions whose first parameter's type is the payload contract. No I/O here."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, ParamSpec, Protocol, TypeVar

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError

from jobhandler.context import JobContext
from jobhandler.errors import InvalidPayload, InvalidResult, UnknownTask
from jobhandler.jobs import NewJob, new_job_id
from jobhandler.retry import RetryPolicy
from jobhandler.validation import (
    MAX_AHEAD,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    RUN_AT_RANGE,
    JsonLimits,
    check_name,
    compact_json,
    json_errors,
    run_at_problem,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from jobhandler.jobs import Job
    from jobhandler.settings import Settings

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

    queue: str | None = Field(
        default=None, min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN
    )
    priority: int | None = Field(default=None, ge=-1000, le=1000, description="higher runs first")
    delay: float | None = Field(
        default=None, ge=0, le=MAX_AHEAD, allow_inf_nan=False, description="seconds until due"
    )
    run_at: datetime | Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        default=None, description=f"when due: RFC 3339 or epoch seconds, {RUN_AT_RANGE}"
    )
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_AHEAD,
        allow_inf_nan=False,
        description="seconds one run may take",
    )

    @field_validator("priority", "delay", "run_at", "max_attempts", "timeout", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would take true as 1 and "5" as 5: the JSON Schema says a number, and a
        # client that sends anything else has made a mistake.
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        if info.field_name == "run_at" and isinstance(value, str):
            if not _RFC3339_START.match(value):
                raise ValueError("RFC 3339 text, such as 2030-01-01T00:00:00Z, or a number")
        elif isinstance(value, str):
            raise ValueError("a number, written without quotes")
        return value

    @field_validator("run_at")
    @classmethod
    def _run_at_in_range(cls, value: datetime | float | None) -> datetime | float | None:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("run_at needs a time zone, for example 2030-01-01T00:00:00Z")
        if value is not None and (problem := run_at_problem(value)):
            raise ValueError(f"run_at {problem}")
        return value

    @model_validator(mode="after")
    def _one_start_time(self) -> JobOptions:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give either delay or run_at, not both")
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
_RFC3339_START = re.compile(r"\d{4}-\d\d-\d\d[Tt]")


def _integral_float(error: Any) -> bool:
    """An error only because an integer came written as a float, such as 3.0."""
    given = error.get("input")
    return error["type"] == "int_type" and isinstance(given, float) and given.is_integer()


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


class TaskOwner(Protocol):
    """What a task needs from its App: declared here, as the App imports tasks and not back."""

    clock: Callable[[], float]

    @property
    def settings(self) -> Settings: ...

    async def insert_jobs(
        self, new: list[NewJob], connection: AsyncConnection[Any] | None = None
    ) -> list[Job]: ...


class Task(Generic[P, R]):
    """A registered task. Call it to run the function directly; ``enqueue`` to submit a job."""

    def __init__(self, app: TaskOwner, name: str, fn: Callable[P, R], options: TaskOptions) -> None:
        self.app = app
        self.name = check_name(name, "task")
        self.fn = fn
        self.options = options
        check_name(options.queue, "queue")
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
        return self.dump_payload(raw)

    def load_payload(self, raw: Any) -> Any:
        """Turn a stored JSON payload into the Python value the function takes."""
        try:
            return self._payload.validate_python(raw)
        except pydantic.ValidationError as exc:
            raise InvalidPayload(self.name, _field_errors(exc)) from None

    def dump_payload(self, value: Any) -> Any:
        """Turn a Python payload (a model, a dataclass, or its JSON form) into checked JSON.

        The value is checked before pydantic sees it (depth, NaN: pydantic would turn a NaN
        under ``Any`` into null) and its JSON form after (what a model held), by the same rules.
        """
        limits = self.json_limits()
        if errors := json_errors(value, ["payload"], limits, strict=False):
            raise InvalidPayload(self.name, errors)
        dumped = self._payload.dump_python(_read(self._payload, value, self.name), mode="json")
        if errors := json_errors(dumped, ["payload"], limits):
            raise InvalidPayload(self.name, errors)
        return dumped

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
        settings = self.app.settings
        return JsonLimits(settings.max_json_depth, settings.max_payload_bytes)

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
        overrides = job_options(options)
        now = self.app.clock()
        new = self.new_job(self.dump_payload(payload), now, overrides)
        (job,) = await self.app.insert_jobs([new], connection)
        return job

    async def enqueue_many(self, payloads: Sequence[Any], **options: Any) -> list[Job]:
        """Submit many jobs of this task in one transaction, all or none.

        The payloads are checked in one pass; an invalid one raises InvalidPayload naming its
        index, and nothing is stored. ``options`` apply to every job.
        """
        payloads, limits = list(payloads), self.json_limits()
        if errors := _each_json_errors(payloads, limits, strict=False):
            raise InvalidPayload(self.name, errors)
        read = _read(self._payloads, payloads, self.name, ["jobs"])
        checked = self._payloads.dump_python(read, mode="json")
        if errors := _each_json_errors(checked, limits, strict=True):
            raise InvalidPayload(self.name, errors)
        overrides = job_options(options)
        now = self.app.clock()
        return await self.app.insert_jobs([self.new_job(p, now, overrides) for p in checked])


def _read(
    adapter: pydantic.TypeAdapter[Any], value: Any, task: str, prefix: Sequence[str] = ()
) -> Any:
    """A submitted payload (or list of them) as the function's type, by its JSON Schema's rules.

    A JSON value is read as JSON, strictly: ``true`` is no number and ``"5"`` no integer, as
    the published schema says. Only an integral float for an integer (``3.0``), which JSON
    Schema counts as an integer, is let through. Anything else (a model instance from Python
    code) is read by pydantic's usual rules.
    """
    try:
        try:
            text = compact_json(value)
        except (TypeError, ValueError):
            return adapter.validate_python(value)
        try:
            return adapter.validate_json(text, strict=True)
        except pydantic.ValidationError as exc:
            if not all(_integral_float(e) for e in exc.errors(include_url=False)):
                raise
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        raise InvalidPayload(task, _field_errors(exc, prefix)) from None


def job_options(options: dict[str, Any]) -> JobOptions:
    """Per-job options given to ``enqueue`` as keywords (pydantic's ValidationError if bad)."""
    return JobOptions(**options) if options else NO_OPTIONS


def _each_json_errors(payloads: list[Any], limits: JsonLimits, strict: bool) -> list[Any]:
    for index, payload in enumerate(payloads):
        if errors := json_errors(payload, ["jobs", index, "payload"], limits, strict=strict):
            return errors
    return []


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
