"""Options: a task's defaults (``TaskOptions``) and what one job may override (``JobOptions``).

``JobOptions`` is the one declaration of the per-job options: the HTTP API reads a submit's body
with it, and ``Task.enqueue`` its keywords. ``EnqueueOptions`` spells the same keywords as a
TypedDict so that mypy checks them at the call (``enqueue(5, prioity=3)`` is a type error);
a test keeps the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from jobhandler.model.errors import InvalidOptions
from jobhandler.model.retry import RetryPolicy
from jobhandler.model.validation import (
    MAX_AHEAD,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    RUN_AT_RANGE,
    UNIQUE_KEY_MAX_LENGTH,
    field_errors,
    run_at_problem,
    text_error,
)

Isolation = Literal["async", "thread", "process"]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    queue: str = "default"
    max_attempts: int = 3
    timeout: float | None = None
    priority: int = 0  # higher runs first
    isolation: Isolation | None = None  # None: "async" for async def, "thread" for def
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Seconds after which a run is asked to stop (ctx.cancelled; CancelledError at an async
    # task's next await) before ``timeout`` stops it by force. Task-level only: see reliability.md.
    soft_timeout: float | None = None
    # Seconds a completed job (outside a workflow) is kept, instead of keep_completed.
    result_ttl: float | None = None

    def __post_init__(self) -> None:
        for name in ("soft_timeout", "result_ttl"):
            value = getattr(self, name)
            if value is not None and not _seconds(value):
                raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
        soft = self.soft_timeout
        if soft is None:
            return
        if self.timeout is not None and not soft < self.timeout:
            raise ValueError(
                f"soft_timeout ({soft:g}) must be less than timeout ({self.timeout:g})"
            )


def _seconds(value: object) -> bool:
    """A positive, finite number of seconds, not a boolean (NaN fails the comparison)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= MAX_AHEAD


class JobOptions(BaseModel):
    """Per-job overrides of a task's options; None keeps the task's own.

    A field added here goes into ``EnqueueOptions`` below too (tests/unit/test_typing.py checks).
    """

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
    unique_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=UNIQUE_KEY_MAX_LENGTH,
        json_schema_extra={"pattern": "^[^\\u0000]*$"},  # no NUL (text_error checks it)
        description="no second job with this key is created while one waits or runs (or,"
        " with unique_for, for that long after its submit): a repeat answers with that job",
    )
    concurrency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=UNIQUE_KEY_MAX_LENGTH,
        json_schema_extra={"pattern": "^[^\\u0000]*$"},  # no NUL (text_error checks it)
        description="its tenant: due jobs of different keys are claimed round-robin, and the"
        " queue's or task's key_concurrency and key_rate_limit count per key (docs/tenants.md)",
    )
    unique_for: float | None = Field(
        default=None,
        gt=0,
        le=MAX_AHEAD,
        allow_inf_nan=False,
        description="seconds unique_key is held from the submit, whatever the job does",
    )

    debounce: float | None = Field(
        default=None,
        gt=0,
        le=MAX_AHEAD,
        allow_inf_nan=False,
        description="with unique_key: starts this many seconds after the last submit of the key;"
        " a submit while its job waits replaces that job's payload and pushes its start back",
    )
    debounce_max_wait: float | None = Field(
        default=None,
        gt=0,
        le=MAX_AHEAD,
        allow_inf_nan=False,
        description="with debounce: the latest start, in seconds after the key's first submit",
    )

    @field_validator(
        "priority",
        "delay",
        "run_at",
        "max_attempts",
        "timeout",
        "unique_for",
        "debounce",
        "debounce_max_wait",
        mode="before",
    )
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

    @field_validator("unique_key", "concurrency_key")
    @classmethod
    def _option_keys_are_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and (problem := text_error(value, [str(info.field_name)])):
            raise ValueError(problem["msg"])
        return value

    @model_validator(mode="after")
    def _window_needs_a_key(self) -> JobOptions:
        if self.unique_for is not None and self.unique_key is None:
            raise ValueError("unique_for needs a unique_key")
        return self

    @model_validator(mode="after")
    def _debounce_needs_a_live_key(self) -> JobOptions:
        if self.debounce_max_wait is not None and self.debounce is None:
            raise ValueError("debounce_max_wait needs debounce")
        if self.debounce is None:
            return self
        if self.unique_key is None or self.unique_for is not None:
            raise ValueError("debounce needs a unique_key, without unique_for")
        if self.delay is not None or self.run_at is not None:
            raise ValueError("debounce sets the start: give no delay or run_at with it")
        if self.debounce_max_wait is not None and self.debounce_max_wait < self.debounce:
            raise ValueError("debounce_max_wait must be at least debounce")
        return self

    def unique_until(self, now: float) -> float | None:
        """Until when the unique key is held; None: while the job waits or runs."""
        if self.unique_key is None or self.unique_for is None:
            return None
        return now + self.unique_for

    @model_validator(mode="after")
    def _one_start_time(self) -> JobOptions:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give either delay or run_at, not both")
        return self

    def start_time(self, now: float) -> float:
        if self.debounce is not None:
            return now + self.debounce
        if self.delay is not None:
            return now + self.delay
        if isinstance(self.run_at, datetime):
            return self.run_at.timestamp()
        if self.run_at is not None:
            return float(self.run_at)
        return now


class WorkflowOptions(TypedDict, total=False):
    """The per-job keywords of ``wf.add`` and ``task.s``: ``enqueue``'s but those a job of a
    workflow cannot have (its unique key is held while it waits or runs; nothing debounces it)."""

    queue: str
    priority: int
    delay: float
    run_at: datetime | float
    max_attempts: int
    timeout: float
    unique_key: str
    concurrency_key: str


class EnqueueOptions(WorkflowOptions, total=False):
    """The keywords of ``Task.enqueue``: ``JobOptions``'s fields, for the type checker."""

    unique_for: float
    debounce: float
    debounce_max_wait: float


NO_OPTIONS = JobOptions()
_RFC3339_START = re.compile(r"\d{4}-\d\d-\d\d[Tt]")


def job_options(options: EnqueueOptions | dict[str, Any]) -> JobOptions:
    """Per-job options given to ``enqueue`` as keywords; InvalidOptions names each bad one."""
    if not options:
        return NO_OPTIONS
    try:
        return JobOptions(**options)
    except pydantic.ValidationError as exc:
        errors = [
            {**e, "msg": "unknown option"} if e["type"] == "extra_forbidden" else e
            for e in field_errors(exc.errors())
        ]
        raise InvalidOptions(errors, sorted(JobOptions.model_fields)) from None


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
