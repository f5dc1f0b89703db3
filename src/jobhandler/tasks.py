"""Tasks: named functions whose first parameter's type is the payload contract. No I/O here."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

import pydantic

from jobhandler.context import JobContext
from jobhandler.errors import InvalidPayload, UnknownTask
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
        self._payload = pydantic.TypeAdapter(
            self.signature.payload_type if self.signature.payload_type is not None else None
        )
        self._result = pydantic.TypeAdapter(self.signature.result_type)

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

    async def enqueue(
        self,
        payload: Any = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: float | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        connection: AsyncConnection[Any] | None = None,
    ) -> Job:
        """Submit one job of this task; returns it once it is committed.

        With ``connection`` (PostgreSQL only: your open psycopg connection to the jobs
        database) the job is written inside your current transaction instead: it exists, and
        workers see it, only once you commit, and not at all if you roll back.
        """
        from jobhandler.app import SubmitRequest

        request = SubmitRequest(
            task=self.name,
            payload=self.dump_payload(payload),
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        return await self.app.submit(request, connection=connection)


def _field_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["payload", *err["loc"]], "msg": err["msg"], "type": err["type"]}
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
