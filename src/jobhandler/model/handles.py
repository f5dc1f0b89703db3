"""The typed handle ``Task.enqueue`` returns: the job as committed, plus its task's result type.

A ``JobHandle[R]`` is a ``Job`` (every field, as stored when it was submitted) that knows its
task, so ``await handle.get_result()`` waits for the job and gives the task's return value as
its declared type ``R`` (a pydantic model comes back as that model, not a dict). Each coroutine
method has a ``*_sync`` twin for code without an event loop (see ``jobhandler.sync``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, cast

from jobhandler.model.errors import JobFailed, WaitTimeout
from jobhandler.model.jobs import Job, JobStatus

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")


class JobSource(Protocol):
    """What a handle reads and waits through: the App's connected service (app.Connection)."""

    async def get_job(self, job_id: str) -> Job: ...

    async def wait_for_job(self, job_id: str, timeout: float) -> Job: ...

    async def cancel_job(self, job_id: str, wait: float = 0.0) -> Job: ...

    def run_sync(self, awaitable: Awaitable[T]) -> T: ...


class ResultReader(Protocol[R_co]):
    """A task, as a handle sees it: where its jobs live, and how a stored result is read back."""

    @property
    def jobs(self) -> JobSource: ...

    def load_result(self, raw: Any) -> R_co: ...


@dataclass(frozen=True, slots=True)
class JobHandle(Job, Generic[R]):
    """A submitted job of a task returning ``R``; ``job.result`` stays the stored JSON.

    Each task has its own subclass (``for_task``) that knows the task as ``reader``, so a
    handle holds nothing a ``Job`` does not: the job the store returned becomes a handle in
    place (``adopt``) instead of being copied, which would cost a bulk submit of 1,000 jobs
    about a seventh of its time.
    """

    reader: ClassVar[ResultReader[Any]]
    # True when enqueue found a job already holding its unique_key: this is that job, and
    # nothing new was stored.
    duplicate: ClassVar[bool] = False
    _as_duplicate: ClassVar[type[JobHandle[Any]]]

    @classmethod
    def for_task(cls, reader: ResultReader[R]) -> type[JobHandle[R]]:
        made: type[JobHandle[R]] = _subclass(cls, reader=reader)
        made._as_duplicate = _subclass(made, duplicate=True)
        return made

    @classmethod
    def adopt(cls, job: Job, duplicate: bool = False) -> Self:
        """``job`` itself, now a handle: the same fields (and slots), this class's methods."""
        kind = cls._as_duplicate if duplicate else cls
        object.__setattr__(job, "__class__", kind)  # frozen: not through its own __setattr__
        return cast("Self", job)

    async def refresh(self) -> JobHandle[R]:
        """The job as it stands now."""
        return self.adopt(await self.reader.jobs.get_job(self.id))

    async def wait(self, timeout: float = 60.0) -> JobHandle[R]:
        """The job once it is finished, or as it stands after ``timeout`` seconds."""
        return self.adopt(await self.reader.jobs.wait_for_job(self.id, timeout))

    async def get_result(self, timeout: float = 60.0) -> R:
        """Wait for the job and return its result as the task's return type.

        Raises JobFailed when it failed or was cancelled, WaitTimeout when it is still not
        finished after ``timeout`` seconds.
        """
        return (await self.wait(timeout)).typed_result(timeout)

    def typed_result(self, timeout: float = 0.0) -> R:
        """This snapshot's result as ``R``; JobFailed or WaitTimeout as in ``get_result``."""
        if self.status is JobStatus.COMPLETED:
            result: R = self.reader.load_result(self.result)
            return result
        if self.status.terminal:
            raise JobFailed(self.id, self.status.value, self.error)
        raise WaitTimeout(self.id, self.status.value, timeout)

    async def cancel(self) -> JobHandle[R]:
        """Cancel the job (a running one is asked to stop); returns it as it then stands."""
        return self.adopt(await self.reader.jobs.cancel_job(self.id))

    # -- the same, for code without an event loop -------------------------------------------

    def refresh_sync(self) -> JobHandle[R]:
        return self.reader.jobs.run_sync(self.refresh())

    def wait_sync(self, timeout: float = 60.0) -> JobHandle[R]:
        return self.reader.jobs.run_sync(self.wait(timeout))

    def get_result_sync(self, timeout: float = 60.0) -> R:
        return self.reader.jobs.run_sync(self.get_result(timeout))

    def cancel_sync(self) -> JobHandle[R]:
        return self.reader.jobs.run_sync(self.cancel())


def _subclass(base: type[Any], **attributes: Any) -> Any:
    # No slots of its own: a Job's layout, so a Job can become one in place.
    named = {"__slots__": (), "__qualname__": base.__qualname__, **attributes}
    return type(base.__name__, (base,), named)
