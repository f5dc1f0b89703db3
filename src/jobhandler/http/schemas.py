"""Wire models: what the HTTP API sends, each declared once.

A model is both what the OpenAPI description shows and what writes the JSON: the routes build
models from domain objects (``from_attributes``, in pydantic's core) and answer with the bytes
of pydantic's own serialiser (``TypeAdapter.dump_json``), so the description cannot drift from
what is sent, and no dict is built by hand on the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer, TypeAdapter, WithJsonSchema

from jobhandler.jobs import Job, JobStatus
from jobhandler.store.base import QueueStats, WorkerInfo
from jobhandler.tasks import Task

# Whether this request may see tracebacks (they can show internals): set per request by the
# access control middleware, False for a submit-only token; True for an open server.
SHOW_TRACEBACKS: ContextVar[bool] = ContextVar("jobhandler_show_tracebacks", default=True)


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 in UTC, always with microseconds, as the Go service wrote them."""
    # isoformat of an aware UTC time always ends in "+00:00": cutting it is cheaper than replace.
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


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

    @classmethod
    def of(cls, stats: QueueStats) -> QueueOut:
        return cls(queue=stats.queue, counts={s: stats.counts.get(s.value, 0) for s in JobStatus})


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


_JOB = TypeAdapter(JobOut)
_JOBS = TypeAdapter(list[JobOut])
_BATCH = TypeAdapter(BatchOut)
_TASKS = TypeAdapter(list[TaskOut])
_QUEUES = TypeAdapter(list[QueueOut])
_WORKERS = TypeAdapter(list[WorkerOut])


def job_json(job: Job) -> bytes:
    return _JOB.dump_json(JobOut.many([job])[0])


def jobs_json(jobs: Sequence[Job]) -> bytes:
    return _JOBS.dump_json(JobOut.many(jobs))


def batch_json(jobs: Sequence[Job]) -> bytes:
    return _BATCH.dump_json(BatchOut(jobs=JobOut.many(jobs)))


def tasks_json(tasks: Sequence[Task[Any, Any]]) -> bytes:
    return _TASKS.dump_json([TaskOut.of(task) for task in tasks])


def queues_json(stats: Sequence[QueueStats]) -> bytes:
    return _QUEUES.dump_json([QueueOut.of(s) for s in stats])


def workers_json(workers: Sequence[WorkerInfo]) -> bytes:
    return _WORKERS.dump_json(_WORKERS.validate_python(workers, from_attributes=True))
