"""Exceptions the service raises to its frontends, and the two a task may raise to steer retries.

Every exception class of the package derives from ``JobHandlerError``, so a caller can catch
all of them, and only them, with one clause.
"""

from __future__ import annotations

from typing import Any

from jobhandler.model.redact import redact


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


class UniqueKeyHeld(InvalidTransition):
    """A retry was refused, and nothing written: another job holds the job's unique key (a
    waiting or running job with it, or for a windowed key the job whose window is unexpired),
    as it would answer a submit of that key in the job's place. ``holder``: that job's id."""

    def __init__(self, job_id: str, key: str, holder: str, status: str) -> None:
        super().__init__(
            f"job {job_id} cannot be retried while job {holder} holds its unique key {key!r}",
            status,
        )
        self.job_id = job_id
        self.key = key
        self.holder = holder


class KeyNotAllowed(JobHandlerError):
    """A caller bound to a concurrency key named another one (HTTP 403): nothing was stored."""

    def __init__(self, bound: str) -> None:
        super().__init__(
            f"this token is bound to the concurrency key {bound!r}: it may submit jobs of that"
            " key only (give none, or that one)"
        )
        self.bound = bound


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


class InvalidOptions(InvalidJob):
    """Options given to ``Task.enqueue`` were refused: an unknown name or a bad value."""

    def __init__(self, errors: list[dict[str, Any]], known: list[str]) -> None:
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"invalid option {where}: {first['msg']}" if where else f"{first['msg']}"
        if first["type"] == "extra_forbidden":
            message += f" (the options are {', '.join(known)})"
        super().__init__(message, errors)


class JobFailed(JobHandlerError):
    """A job whose result was asked for ended without one: failed, or cancelled."""

    def __init__(self, job_id: str, status: str, error: str | None) -> None:
        super().__init__(f"job {job_id} {status}: {error or 'no error given'}")
        self.job_id = job_id
        self.status = status
        self.error = error


class WaitTimeout(JobHandlerError):
    """A job was still not finished when its waiter gave up."""

    def __init__(self, job_id: str, status: str, timeout: float) -> None:
        super().__init__(f"job {job_id} is still {status} after {timeout:g}s")
        self.job_id = job_id
        self.status = status


class DuplicateJob(JobHandlerError):
    """A job with that id exists already; nothing of the submit was stored."""


class StoreUnavailable(JobHandlerError):
    """The store could not be reached; the operation did not happen."""

    def __init__(self, message: str) -> None:
        # Driver messages may quote the connection string; this one is shown to API clients
        # (503) and logged, so its password goes here, where every such message is made.
        super().__init__(redact(message))


class DiskFull(StoreUnavailable):
    """The store's disk is full (a SQLite store's low-space state, docs/reliability.md): it
    refuses what would add data or start new work until space is back, while cancel, delete,
    prune and the ends of runs already started still go through. Nothing of the refused
    operation was written; try again after ``retry_after`` seconds."""

    retry_after = 5
    # What a user is told (the API's problem detail), whatever the driver said.
    explained = (
        "disk full: the store takes no new work until space is freed on its disk;"
        " cancel, delete and prune still work"
    )


class LeaseLost(JobHandlerError):
    """A run's ``ctx.transaction()`` found that the run no longer holds its job (its lease
    expired and it was rescued, or it was released): the transaction was rolled back, so none
    of its writes were committed. The job runs again (or already did) under a newer attempt."""


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


# -- what a client of the HTTP API raises (client/clients.py): problem JSON as exceptions -------


class ClientError(JobHandlerError):
    """The server answered with an error: ``status`` is the HTTP status, ``body`` the problem.

    Subclasses name the common cases; where the service has its own class for the same case,
    the client's derives from it too, so ``except JobNotFound`` or ``except InvalidJob`` works
    the same in-process and over HTTP.
    """

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        # Not super(): in a subclass that is also a service error, that would be its __init__.
        JobHandlerError.__init__(self, message)
        self.status = status
        self.body = body


class ServerUnreachable(ClientError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach the server at {url}: {reason}")


class Unauthorized(ClientError):
    """401: no token, or one the server does not know."""


class Forbidden(ClientError):
    """403: the token's scope does not allow the call."""


class NotFound(ClientError):
    """404: no such job, queue or schedule."""


class RemoteJobNotFound(NotFound, JobNotFound):
    def __init__(self, status: int, message: str, body: Any = None, job_id: str = "") -> None:
        NotFound.__init__(self, status, message, body)
        self.job_id = job_id


class Conflict(ClientError):
    """409: the job's status (``job_status``) does not allow the action, or for a retry
    another job (``holder``) holds the job's unique key."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(status, message, body)
        fields = body if isinstance(body, dict) else {}
        self.job_status: str | None = fields.get("job_status")
        self.holder: str | None = fields.get("holder")


class Unprocessable(ClientError, InvalidJob):
    """422: the request was refused; ``errors`` has one entry per bad field (loc, msg, type)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        ClientError.__init__(self, status, message, body)
        errors = body.get("errors") if isinstance(body, dict) else None
        self.errors = errors if isinstance(errors, list) else []


class ServerUnavailable(ClientError, StoreUnavailable):
    """503: the server cannot reach its store (or is not ready)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        ClientError.__init__(self, status, message, body)


_BY_STATUS: dict[int, type[ClientError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    503: ServerUnavailable,
}


def problem_error(status: int, body: Any, job_id: str | None = None) -> ClientError:
    """The exception for an error answer (RFC 9457 problem JSON, or whatever came)."""
    message = body.get("error") or body.get("detail") if isinstance(body, dict) else None
    text = str(message or f"HTTP {status}")
    if status == 404 and job_id is not None:
        return RemoteJobNotFound(status, text, body, job_id)
    return _BY_STATUS.get(status, ClientError)(status, text, body)
