"""Exceptions the service raises to its frontends, and the two a task may raise to steer retries.

Every exception class of the package derives from ``JobHandlerError``, so a caller can catch
all of them, and only them, with one clause.
"""

from __future__ import annotations

from typing import Any

from jobhandler.redact import redact


class JobHandlerError(Exception):
    """Base of every error the package raises on purpose."""


class JobNotFound(JobHandlerError):
    def __init__(self, job_id: str) -> None:
        super().__init__("job not found")
        self.job_id = job_id


class InvalidTransition(JobHandlerError):
    """The job's status does not allow the action (for example cancelling a completed job)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class InvalidJob(JobHandlerError):
    """A submitted job was refused; ``errors`` has one entry per field: loc, msg, type."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors

    def at(self, *prefix: str | int) -> list[dict[str, Any]]:
        return [{**e, "loc": [*prefix, *e["loc"]]} for e in self.errors]


class UnknownTask(InvalidJob):
    def __init__(self, name: str) -> None:
        message = f"unknown task {name!r}"
        super().__init__(message, [{"loc": ["task"], "msg": message, "type": "unknown_task"}])
        self.name = name


class InvalidPayload(InvalidJob):
    """The payload does not match the task's payload type."""

    def __init__(self, task: str, errors: list[dict[str, Any]]) -> None:
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"])
        super().__init__(f"invalid payload for task {task!r}: {where}: {first['msg']}", errors)


class DuplicateJob(JobHandlerError):
    """A job with that id exists already; nothing of the submit was stored."""


class StoreUnavailable(JobHandlerError):
    """The store could not be reached; the operation did not happen."""

    def __init__(self, message: str) -> None:
        # Driver messages may quote the connection string; this one is shown to API clients
        # (503) and logged, so its password goes here, where every such message is made.
        super().__init__(redact(message))


class RetryLater(JobHandlerError):
    """Raise from a task to run it again after ``delay`` seconds (it still uses up an attempt)."""

    def __init__(self, delay: float, message: str = "retry requested") -> None:
        super().__init__(message)
        self.delay = delay


class PermanentFailure(JobHandlerError):
    """Raise from a task to fail the job at once, without any further attempt."""


class InvalidResult(PermanentFailure):
    """A run returned (or reported as progress) a value that is not storable JSON.

    It fails the job at once, with this message: storing the value would break every read of
    the job, and running the task again would most likely return the same value.
    """

    def __init__(self, task: str, problem: dict[str, Any]) -> None:
        where = ".".join(str(p) for p in problem["loc"])
        super().__init__(
            f"task {task!r} gave a value that is not storable JSON: {where}: {problem['msg']}"
        )
        self.problem = problem
