"""Wire models: what the HTTP API sends and takes, kept apart from the domain model."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from jobhandler.jobs import Job, JobStatus
from jobhandler.store.base import QueueStats, WorkerInfo
from jobhandler.tasks import Task

# Whether this request may see tracebacks (they can show internals): set per request by the
# access control middleware, False for a submit-only token; True for an open server.
SHOW_TRACEBACKS: ContextVar[bool] = ContextVar("jobhandler_show_tracebacks", default=True)


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class JobOut(BaseModel):
    """A job as the API shows it. The Go service's fields come first and keep their names."""

    id: str
    payload: Any
    status: JobStatus
    result: Any = None
    error: str | None = None
    created_at: str
    updated_at: str
    task: str
    queue: str
    priority: int
    attempt: int
    max_attempts: int
    timeout: float | None
    run_at: str
    started_at: str | None
    finished_at: str | None
    traceback: str | None
    worker_id: str | None
    progress: Any = None
    cancel_requested: bool


def job_out(job: Job) -> dict[str, Any]:
    """The JSON of a job (built by hand: this is the hottest path of the API)."""
    return {
        "id": job.id,
        "payload": job.payload,
        "status": job.status.value,
        "result": job.result,
        "error": job.error,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "task": job.task,
        "queue": job.queue,
        "priority": job.priority,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "run_at": rfc3339(job.run_at),
        "started_at": rfc3339(job.started_at),
        "finished_at": rfc3339(job.finished_at),
        "traceback": job.traceback if SHOW_TRACEBACKS.get() else None,
        "worker_id": job.worker_id,
        "progress": job.progress,
        "cancel_requested": job.cancel_requested,
    }


class TaskOut(BaseModel):
    name: str
    queue: str
    max_attempts: int
    timeout: float | None
    priority: int
    isolation: str
    payload_schema: dict[str, Any]
    result_schema: dict[str, Any]


def task_out(task: Task[Any, Any]) -> dict[str, Any]:
    return TaskOut(
        name=task.name,
        queue=task.options.queue,
        max_attempts=task.options.max_attempts,
        timeout=task.options.timeout,
        priority=task.options.priority,
        isolation=task.isolation,
        payload_schema=task.payload_schema(),
        result_schema=task.result_schema(),
    ).model_dump()


def worker_out(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": worker.queues,
        "concurrency": worker.concurrency,
        "running": worker.running,
        "started_at": rfc3339(worker.started_at),
        "last_seen_at": rfc3339(worker.last_seen_at),
    }


def queue_out(stats: QueueStats) -> dict[str, Any]:
    return {
        "queue": stats.queue,
        "counts": {s.value: stats.counts.get(s.value, 0) for s in JobStatus},
    }
