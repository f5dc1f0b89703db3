"""Wire models: what the HTTP API sends, each declared once.

A model is both what the OpenAPI description shows and what writes the JSON: the routes build
models from domain objects (``from_attributes``, in pydantic's core) and answer with the bytes
of pydantic's own serialiser (``TypeAdapter.dump_json``), so the description cannot drift from
what is sent, and no dict is built by hand on the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter, WithJsonSchema

from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.rates import MAX_CONCURRENCY, RATE_PATTERN
from jobhandler.model.records import SKIPPED_SHOWN, Attempt, QueueStats, ScheduleView, WorkerInfo
from jobhandler.model.tasks import Task
from jobhandler.model.workflows import WorkflowPage, WorkflowStatus, WorkflowView

# Whether this request may see tracebacks (they can show internals): set per request by the
# access control middleware, False for a submit-only token; True for an open server.
SHOW_TRACEBACKS: ContextVar[bool] = ContextVar("jobhandler_show_tracebacks", default=True)


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 in UTC, always with microseconds, as the Go service wrote them:
    ``datetime``'s isoformat, with its rounding (half to even), the whole second's text cached.
    A new job's time missed a cache of whole times at every submit; its second rarely does."""
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1
    elif micros < 0:
        micros += 1_000_000
        whole -= 1
    return f"{_utc_second(int(whole))}.{micros:06d}Z"


@lru_cache(maxsize=256)
def _utc_second(whole: int) -> str:
    # isoformat of an aware UTC time without microseconds always ends in "+00:00".
    return datetime.fromtimestamp(whole, UTC).isoformat()[:-6]


# A time: held as epoch seconds like the domain's, written as RFC 3339 text.
Timestamp = Annotated[
    float,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class JobOut(BaseModel):
    """A job as the API shows it. The Go service's fields come first and keep their names."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    payload: Any
    status: JobStatus
    result: Any = None
    error: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    task: str
    queue: str
    priority: int
    attempt: int
    max_attempts: int
    timeout: float | None
    run_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    traceback: str | None
    worker_id: str | None
    progress: Any = None
    cancel_requested: bool
    unique_key: str | None = None
    unique_until: Timestamp | None = None  # a window's end; null: held while it waits or runs
    # A job of a workflow (``POST /workflows``): null for a plain job.
    workflow_id: str | None = None
    workflow_key: str | None = Field(default=None, description="its key in its workflow")
    after: list[str] | None = Field(default=None, description="ids of the jobs it runs after")
    concurrency_key: str | None = Field(
        default=None, description="its tenant: claimed round-robin against the other keys"
    )

    @classmethod
    def many(cls, jobs: Sequence[Job]) -> list[JobOut]:
        """The wire models of ``jobs``, built in one pass of pydantic's core."""
        out = _JOBS.validate_python(jobs, from_attributes=True)
        if not SHOW_TRACEBACKS.get():  # a submit-only token: a traceback can show internals
            for job in out:
                job.traceback = None
        return out


class BatchOut(BaseModel):
    jobs: list[JobOut]
    # Positions in ``jobs`` of duplicates: their unique key was held, so the job there is the
    # one that holds it, and nothing was created for them.
    duplicates: list[int] = []


class SkippedOut(BaseModel):
    id: str
    holder: str = Field(description="the job that holds its unique key")


class BulkOut(BaseModel):
    action: Literal["cancel", "retry", "delete"]
    count: int = Field(description="jobs changed (a running job a cancel reached: flagged)")
    # A retry only: the jobs it left as they were because another job holds their unique key.
    skipped: list[SkippedOut] | None = Field(
        default=None,
        description="retry only: jobs left as they were because another job holds their"
        f" unique key (the first {SKIPPED_SHOWN:,})",
    )
    skipped_count: int | None = Field(default=None, description="retry only: how many were skipped")


class TaskOut(BaseModel):
    name: str
    queue: str
    max_attempts: int
    timeout: float | None
    priority: int
    isolation: str
    payload_schema: dict[str, Any]
    result_schema: dict[str, Any]

    @classmethod
    def of(cls, task: Task[Any, Any]) -> TaskOut:
        return cls(
            name=task.name,
            queue=task.options.queue,
            max_attempts=task.options.max_attempts,
            timeout=task.options.timeout,
            priority=task.options.priority,
            isolation=task.isolation,
            payload_schema=task.payload_schema(),
            result_schema=task.result_schema(),
        )


class QueueOut(BaseModel):
    queue: str
    counts: dict[JobStatus, int]  # every status, zero included

    oldest_waiting_at: Timestamp | None = None  # when its longest-waiting due job became due
    # Flow control (service/flow.py): a paused queue starts nothing; limits hold over all workers.
    paused: bool = False
    concurrency: int | None = Field(default=None, description="jobs running at once, at most")
    rate_limit: str | None = Field(default=None, description='jobs started, at most: "100/s"')
    served: bool = Field(default=False, description="a live worker serves this queue")
    key_concurrency: int | None = Field(
        default=None, description="jobs of one concurrency_key running at once, at most"
    )
    key_rate_limit: str | None = Field(
        default=None, description='jobs of one concurrency_key started, at most: "10/s"'
    )

    @classmethod
    def of(cls, stats: QueueStats) -> QueueOut:
        counts = {s: stats.counts.get(s.value, 0) for s in JobStatus}
        return cls(
            queue=stats.queue,
            counts=counts,
            oldest_waiting_at=stats.oldest_waiting_at,
            paused=stats.paused,
            concurrency=stats.concurrency,
            rate_limit=stats.rate_limit,
            served=stats.served,
            key_concurrency=stats.key_concurrency,
            key_rate_limit=stats.key_rate_limit,
        )


class QueueLimitsIn(BaseModel):
    """PATCH /queues/{name}: the limits to change; a member left out stays as it is, null
    removes that limit."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    rate_limit: str | None = Field(default=None, pattern=RATE_PATTERN, examples=["100/s", "10/min"])
    key_concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    key_rate_limit: str | None = Field(default=None, pattern=RATE_PATTERN, examples=["10/s"])


class AttemptOut(BaseModel):
    """One run of a job; ``outcome`` is the status it left the job in (null while it runs)."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    worker_id: str | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    outcome: JobStatus | Literal["interrupted"] | None = Field(
        description="the status the run left the job in; interrupted: a graceful stop handed"
        " it back (the attempt not counted)"
    )
    error: str | None
    traceback: str | None
    after_user_retry: bool = Field(
        default=False, description="the first run after a user retried the finished job"
    )


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    running: int
    started_at: Timestamp
    last_seen_at: Timestamp


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    disk_full: bool = Field(
        default=False,
        description="The store is short of disk: it refuses new work (503) until space is"
        " back; cancel, delete and prune still work (docs/reliability.md).",
    )


class WorkflowJobOut(BaseModel):
    """A job as its workflow shows it: its key, and the keys of the jobs it runs after."""

    model_config = ConfigDict(from_attributes=True)

    key: str
    id: str
    task: str
    status: JobStatus
    after: list[str] = Field(description="keys of the jobs it runs after")
    error: str | None = None


class WorkflowSummaryOut(BaseModel):
    """A workflow without its jobs: how many of them are in each status (``GET /workflows``)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: WorkflowStatus
    created_at: Timestamp
    cancelled_at: Timestamp | None = None
    counts: dict[JobStatus, int] = Field(description="its jobs per status, zero included")

    @classmethod
    def of(cls, view: WorkflowView) -> WorkflowSummaryOut:
        return cls.model_validate({**_fields(view), "counts": _counts(view)})


class WorkflowOut(WorkflowSummaryOut):
    """A workflow and its jobs, parents before their children."""

    jobs: list[WorkflowJobOut]

    @classmethod
    def of(cls, view: WorkflowView) -> WorkflowOut:
        jobs = _WORKFLOW_JOBS.validate_python(view.jobs, from_attributes=True)
        return cls.model_validate({**_fields(view), "counts": _counts(view), "jobs": jobs})


def _fields(view: WorkflowView) -> dict[str, Any]:
    names = ("id", "name", "status", "created_at", "cancelled_at")
    return {name: getattr(view, name) for name in names}


def _counts(view: WorkflowView) -> dict[JobStatus, int]:
    return {s: view.counts.get(s.value, 0) for s in JobStatus}


class ProblemOut(BaseModel):
    """RFC 9457 problem JSON; the message is under ``error`` too, as the Go service had it."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    error: str
    errors: list[dict[str, Any]] | None = None  # 422: one entry per bad field (loc, msg, type)
    job_status: str | None = None  # 409: the status that forbids the action
    holders: dict[str, str] | None = None  # 409 of POST /workflows: each held key's holder


_JOB = TypeAdapter(JobOut)
_JOBS = TypeAdapter(list[JobOut])
_BATCH = TypeAdapter(BatchOut)
_TASKS = TypeAdapter(list[TaskOut])
_QUEUES = TypeAdapter(list[QueueOut])
_WORKERS = TypeAdapter(list[WorkerOut])
_ATTEMPTS = TypeAdapter(list[AttemptOut])
_WORKFLOW_JOBS = TypeAdapter(list[WorkflowJobOut])
_WORKFLOWS = TypeAdapter(list[WorkflowSummaryOut])


def job_json(job: Job) -> bytes:
    # One job, not a list of one; pydantic's core serialiser called directly (what dump_json
    # calls, less its keyword handling): a submit answers with this.
    out = _JOB.validate_python(job, from_attributes=True)
    if not SHOW_TRACEBACKS.get():  # as JobOut.many
        out.traceback = None
    return _JOB.serializer.to_json(out)


def jobs_json(jobs: Sequence[Job]) -> bytes:
    return _JOBS.dump_json(JobOut.many(jobs))


def batch_json(jobs: Sequence[Job], created: Sequence[bool] = ()) -> bytes:
    duplicates = [i for i, made in enumerate(created) if not made]
    return _BATCH.serializer.to_json(BatchOut(jobs=JobOut.many(jobs), duplicates=duplicates))


def tasks_json(tasks: Sequence[Task[Any, Any]]) -> bytes:
    return _TASKS.dump_json([TaskOut.of(task) for task in tasks])


def queues_json(stats: Sequence[QueueStats]) -> bytes:
    return _QUEUES.dump_json([QueueOut.of(s) for s in stats])


def queue_json(stats: QueueStats) -> bytes:
    return QueueOut.of(stats).model_dump_json().encode()


def attempts_json(attempts: Sequence[Attempt]) -> bytes:
    out = _ATTEMPTS.validate_python(attempts, from_attributes=True)
    if not SHOW_TRACEBACKS.get():  # as for jobs: a submit-only token sees no tracebacks
        for attempt in out:
            attempt.traceback = None
    return _ATTEMPTS.dump_json(out)


def workers_json(workers: Sequence[WorkerInfo]) -> bytes:
    return _WORKERS.dump_json(_WORKERS.validate_python(workers, from_attributes=True))


class ScheduleOut(BaseModel):
    """A periodic schedule (``@app.periodic``): its timing, whether it is paused, its runs."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    task: str
    cron: str | None = Field(description="five-field cron expression, in `timezone`")
    every: float | None = Field(description="seconds between runs (when there is no cron)")
    timezone: str
    payload: Any
    missed: Literal["skip", "catch_up"] = Field(
        description="what a restart does about runs missed while no worker ran"
    )
    paused: bool
    next_run_at: Timestamp
    last_run_at: Timestamp | None
    last_job_id: str | None = Field(description="the job of the last run")


_SCHEDULE = TypeAdapter(ScheduleOut)
_SCHEDULES = TypeAdapter(list[ScheduleOut])


def schedule_json(schedule: ScheduleView) -> bytes:
    return _SCHEDULE.dump_json(_SCHEDULE.validate_python(schedule, from_attributes=True))


def schedules_json(schedules: Sequence[ScheduleView]) -> bytes:
    return _SCHEDULES.dump_json(_SCHEDULES.validate_python(schedules, from_attributes=True))


def workflow_json(view: WorkflowView) -> bytes:
    return WorkflowOut.of(view).model_dump_json().encode()


def workflows_json(page: WorkflowPage) -> bytes:
    return _WORKFLOWS.dump_json([WorkflowSummaryOut.of(view) for view in page.workflows])
