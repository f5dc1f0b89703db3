"""The Django tasks backend: Django tasks as Job Handler tasks, their results as jobs.

Each Django task that names this backend becomes a Job Handler task of the same App (``app``
below) when Django creates it (``validate_task``, run as the ``@task`` decorator runs), named by
its import path. So the web process and the worker know the same tasks as soon as the tasks'
modules are imported (the worker imports every installed app's ``tasks`` module).

Django makes one backend object per thread, so what the backend knows of the tasks lives in
this module, once per process: a result is readable from any thread. A process that has not
imported a task's module yet (a web process answering a result it did not enqueue) imports
every installed app's ``tasks`` module, as the worker does, rather than a module the store
names.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobhandler.app import App
from jobhandler.contrib.django.atomic import joined_connection
from jobhandler.contrib.django.compat import (
    SUCCEEDED,
    BaseTaskBackend,
    InvalidTask,
    TaskContext,
    TaskError,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_result,
)
from jobhandler.model.context import JobContext
from jobhandler.model.errors import JobNotFound
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.validation import NAME_MAX_LENGTH
from jobhandler.settings import Settings

# The one App of Django's tasks, in the web process and in the worker
# (``--app jobhandler.contrib.django.worker:app``).
app = App()

STATUSES = {
    JobStatus.WAITING: TaskResultStatus.READY,
    JobStatus.QUEUED: TaskResultStatus.READY,
    JobStatus.SCHEDULED: TaskResultStatus.READY,
    JobStatus.PROCESSING: TaskResultStatus.RUNNING,
    JobStatus.COMPLETED: SUCCEEDED,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.CANCELLED: TaskResultStatus.FAILED,
}
# Per-task options Django's @task has no word for, from OPTIONS["TASK_OPTIONS"]; and
# concurrency_key_from: the keyword argument whose value is each job's concurrency key.
TASK_OPTIONS = ("max_attempts", "timeout", "key_concurrency", "key_rate_limit")
JOB_OPTIONS = ("concurrency_key_from",)

_connecting = threading.Lock()
_known = threading.Lock()
_django_tasks: dict[str, Any] = {}  # import path -> the Django Task, for every thread


def status_of(job: Job) -> Any:
    """Django's status of a job: RUNNING from its first run until it ends, retries included."""
    if job.status in (JobStatus.QUEUED, JobStatus.SCHEDULED) and job.attempt > 0:
        return TaskResultStatus.RUNNING  # between attempts: a retry, or a run handed back
    return STATUSES[job.status]


class JobHandlerBackend(BaseTaskBackend):  # type: ignore[misc]
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # OPTIONS are Settings fields, in Django's upper case: {"DATABASE_URL": ...}, and
        # TASK_OPTIONS: {"myapp.tasks.send": {"MAX_ATTEMPTS": 5, "TIMEOUT": 30}}.
        options = {key.lower(): value for key, value in self.options.items()}
        self.task_options = _task_options(options.pop("task_options", {}))
        self.settings = Settings(**options)

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        name = task.module_path
        if len(name) > NAME_MAX_LENGTH:
            raise InvalidTask(f"a task's import path is at most {NAME_MAX_LENGTH} long")
        with _known:
            if name not in app.tasks:
                declare = app.task(
                    name=name,
                    queue=task.queue_name,
                    priority=task.priority,
                    **{
                        k: v
                        for k, v in self.task_options.get(name, {}).items()
                        if k in TASK_OPTIONS
                    },
                )
                declare(_body(task))
            _django_tasks.setdefault(name, task)

    def enqueue(self, task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        self.validate_task(task)
        options: dict[str, Any] = {"queue": task.queue_name, "priority": task.priority}
        if task.run_after is not None:
            options["run_at"] = task.run_after.timestamp()
        key_from = self.task_options.get(task.module_path, {}).get("concurrency_key_from")
        if key_from is not None and kwargs.get(key_from) is not None:
            options["concurrency_key"] = str(kwargs[key_from])  # docs/tenants.md
        payload = {"args": list(args), "kwargs": dict(kwargs)}
        registered = app.tasks.get(task.module_path)
        connected = self._app()
        # Inside transaction.atomic() on the store's own database: in that transaction.
        options["connection"] = joined_connection(self.settings)
        job = connected.run_sync(registered.enqueue(payload, **options))
        return as_task_result(task, job, self.alias)

    def get_result(self, result_id: str) -> Any:
        try:
            job = self._app().run_sync(app.service.jobs.get(result_id))
        except JobNotFound:
            raise TaskResultDoesNotExist(result_id) from None
        task = _django_task(job.task)
        if task is None:
            raise TaskResultDoesNotExist(f"{result_id} is not a task of this backend")
        return as_task_result(task, job, self.alias)

    def _app(self) -> App:
        """The App, connected: already (in a worker, or by the project), or now, for good."""
        with _connecting:
            if app.sync.loop is None:
                app.sync.connect(self.settings)
        return app


def _django_task(name: str) -> Any:
    """The Django task of this import path, the installed apps' tasks imported if need be."""
    if name not in _django_tasks:
        from django.utils.module_loading import (  # type: ignore[import-untyped, unused-ignore]
            autodiscover_modules,
        )

        autodiscover_modules("tasks")  # each task registers itself as it is made
    return _django_tasks.get(name)


def _task_options(given: Any) -> dict[str, dict[str, Any]]:
    """OPTIONS["TASK_OPTIONS"]: per import path, max_attempts and timeout (any case)."""
    if not isinstance(given, dict):
        raise InvalidTask("TASK_OPTIONS maps task import paths to their options")
    found: dict[str, dict[str, Any]] = {}
    for name, options in given.items():
        lowered = {str(k).lower(): v for k, v in dict(options).items()}
        unknown = sorted(set(lowered) - set(TASK_OPTIONS) - set(JOB_OPTIONS))
        if unknown:
            raise InvalidTask(f"TASK_OPTIONS[{name!r}]: unknown {', '.join(unknown)}")
        found[name] = lowered
    return found


def _body(task: Any) -> Any:
    """The Job Handler task body that calls a Django task with the job's arguments."""
    if _is_async(task.func):

        async def run_async(payload: dict[str, Any], ctx: JobContext) -> Any:
            args = _with_context(task, payload, ctx)
            return await task.func(*args, **payload["kwargs"])

        return run_async

    def run(payload: dict[str, Any], ctx: JobContext) -> Any:
        from django.db import connections  # type: ignore[import-untyped, unused-ignore]

        try:
            return task.func(*_with_context(task, payload, ctx), **payload["kwargs"])
        finally:
            connections.close_all()  # this thread's own: a run's thread ends with it

    return run


def _with_context(task: Any, payload: dict[str, Any], ctx: JobContext) -> list[Any]:
    if not task.takes_context:
        return list(payload["args"])
    result = task_result(
        task=task,
        id=ctx.job_id,
        status=TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=None,
        last_attempted_at=None,
        finished_at=None,
        args=payload["args"],
        kwargs=payload["kwargs"],
        backend=task.backend,
        errors=[],
        worker_ids=["jobhandler"] * ctx.attempt,  # its length is Django's attempt number
    )
    return [TaskContext(task_result=result), *payload["args"]]


def as_task_result(task: Any, job: Job, alias: str) -> Any:
    """A job as Django's TaskResult."""
    payload = job.payload if isinstance(job.payload, dict) else {"args": [], "kwargs": {}}
    result = task_result(
        task=task,
        id=job.id,
        status=status_of(job),
        enqueued_at=_when(job.created_at),
        started_at=_when(job.started_at),
        last_attempted_at=_when(job.started_at),
        finished_at=_when(job.finished_at),
        args=payload.get("args", []),
        kwargs=payload.get("kwargs", {}),
        backend=alias,
        errors=[_error(job)] if job.error else [],
        worker_ids=[job.worker_id or "jobhandler"] * job.attempt,
    )
    if job.status is JobStatus.COMPLETED:
        object.__setattr__(result, "_return_value", job.result)  # a frozen dataclass
    return result


def _error(job: Job) -> Any:
    return TaskError(
        exception_class_path=_exception_path(job.traceback or "", job.error or ""),
        traceback=job.traceback or job.error or "",
    )


def _exception_path(trace: str, error: str) -> str:
    """The raised class's import path, from the traceback's last line (``pkg.mod.Error: ...``);
    builtins print bare. A job that ended without one (a timeout, a cancel) is a RuntimeError."""
    lines = trace.strip().splitlines() or [error]
    name = lines[-1].partition(":")[0].strip()
    if not name.replace(".", "").replace("_", "").isalnum() or not trace:
        return "builtins.RuntimeError"
    return name if "." in name else f"builtins.{name}"


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn)
