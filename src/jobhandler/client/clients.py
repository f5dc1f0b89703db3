"""Clients for the whole HTTP API, sync and async, over httpx.

Each call is described once (``calls.Calls``) and sent by either client; answers come back as
the server's own wire models (``JobOut``, ``TaskOut``, ``QueueOut``, ... from client/wire.py,
times in epoch seconds as on ``Job``), and error answers (RFC 9457 problem JSON) as exceptions
(errors.py): ``Unprocessable`` is an ``InvalidJob``, a missing job a ``JobNotFound``, and every
one a ``ClientError`` with the HTTP ``status`` and the problem ``body``. ``send`` gives the raw
JSON, for the CLI.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from typing_extensions import Unpack

from jobhandler.client import calls
from jobhandler.client.calls import BulkAction, Call, Calls, QueueLimits
from jobhandler.model.errors import ClientError, ServerUnavailable, ServerUnreachable, problem_error
from jobhandler.model.jobs import TERMINAL as TERMINAL_STATUSES
from jobhandler.model.options import EnqueueOptions

if TYPE_CHECKING:
    from jobhandler.client.wire import (
        AttemptOut,
        BatchOut,
        BulkOut,
        JobOut,
        QueueOut,
        ScheduleOut,
        TaskOut,
        WorkerOut,
    )

# Kept importable from here: the CLI and older code import them from this module.
__all__ = ["DEFAULT_URL", "TERMINAL", "AsyncClient", "Call", "Calls", "Client", "ClientError"]
__all__ += ["ServerUnreachable"]

DEFAULT_URL = "http://127.0.0.1:8080"
TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
Statuses = Sequence[str]


def _auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _decode(response: httpx.Response, call: Call) -> Any:
    if response.status_code == 204:
        return None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.is_error:
        raise problem_error(response.status_code, body, call.job_id)
    return body


def _request_args(call: Call) -> dict[str, Any]:
    args: dict[str, Any] = {"headers": call.headers}
    if call.params:
        args["params"] = call.params
    if call.body is not None:
        args["json"] = call.body
    if call.timeout is not None:
        args["timeout"] = call.timeout
    return args


def _next_page(response: httpx.Response) -> Call | None:
    """The next page's call, from the ``Link: <...>; rel="next"`` header (a keyset cursor)."""
    link = response.links.get("next")
    return Call("GET", link["url"]) if link else None


def _wait_slices(timeout: float) -> Iterator[float]:
    """Server-side waits (each at most 60 s) that together last ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        yield min(remaining, 60.0)
        if remaining <= 0:
            return


class Client:
    """``with Client(url, token=...) as client: job = client.submit("reverse", "abc")``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        timeout: float = 10.0,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        headers = _auth_headers(token)
        self._http = httpx.Client(
            base_url=url, timeout=timeout, headers=headers, transport=transport
        )

    def _response(self, call: Call) -> httpx.Response:
        try:
            return self._http.request(call.method, call.path, **_request_args(call))
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None

    def send(self, call: Call) -> Any:
        """The answer's JSON as it came (None for 204); an error answer raises."""
        return _decode(self._response(call), call)

    def submit(
        self,
        task: str | None,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobOut:
        return calls.job(self.send(Calls.submit(task, payload, idempotency_key, **options)))

    def submit_many(self, jobs: Sequence[dict[str, Any]]) -> BatchOut:
        """Up to 1,000 jobs, all or none: each a dict of ``task``, ``payload`` and options."""
        return calls.batch(self.send(Calls.submit_many(jobs)))

    def get(self, job_id: str, *, wait: float = 0) -> JobOut:
        return calls.job(self.send(Calls.get(job_id, wait)))

    def wait(self, job_id: str, timeout: float = 60.0) -> JobOut:
        """Hold until the job is terminal; returns it as it stands after ``timeout``."""
        for wait in _wait_slices(timeout):
            job = self.get(job_id, wait=wait)
            if job.status.terminal:
                break
        return job

    def list_jobs(
        self,
        *,
        status: Statuses = (),
        queue: str | None = None,
        task: str | None = None,
        page_size: int = 100,
    ) -> Iterator[JobOut]:
        """Every matching job, newest first, fetched a page at a time as you iterate."""
        call: Call | None = Calls.list(status, queue, task, page_size)
        while call is not None:
            response = self._response(call)
            yield from calls.jobs(_decode(response, call))
            call = _next_page(response)

    def cancel(self, job_id: str) -> JobOut:
        return calls.job(self.send(Calls.cancel(job_id)))

    def retry(self, job_id: str) -> JobOut:
        return calls.job(self.send(Calls.retry(job_id)))

    def delete(self, job_id: str) -> None:
        self.send(Calls.delete(job_id))

    def attempts(self, job_id: str) -> list[AttemptOut]:
        return calls.attempts(self.send(Calls.attempts(job_id)))

    def bulk(
        self,
        action: BulkAction,
        *,
        status: Statuses = (),
        queue: str | None = None,
        task: str | None = None,
        created_before: datetime | float | None = None,
    ) -> BulkOut:
        call = Calls.bulk(action, status, queue, task, created_before)
        return calls.bulk(self.send(call))

    def tasks(self) -> list[TaskOut]:
        return calls.tasks(self.send(Calls.tasks()))

    def queues(self) -> list[QueueOut]:
        return calls.queues(self.send(Calls.queues()))

    def update_queue(self, name: str, **limits: Unpack[QueueLimits]) -> QueueOut:
        return calls.queue(self.send(Calls.update_queue(name, limits)))

    def pause_queue(self, name: str) -> QueueOut:
        return calls.queue(self.send(Calls.pause_queue(name)))

    def resume_queue(self, name: str) -> QueueOut:
        return calls.queue(self.send(Calls.pause_queue(name, pause=False)))

    def schedules(self) -> list[ScheduleOut]:
        return calls.schedules(self.send(Calls.schedules()))

    def pause_schedule(self, name: str) -> ScheduleOut:
        return calls.schedule(self.send(Calls.pause_schedule(name)))

    def resume_schedule(self, name: str) -> ScheduleOut:
        return calls.schedule(self.send(Calls.pause_schedule(name, pause=False)))

    def workers(self) -> list[WorkerOut]:
        return calls.workers(self.send(Calls.workers()))

    def ready(self) -> bool:
        """Whether the server can reach its store."""
        try:
            self.send(Calls.ready())
        except ServerUnavailable:
            return False
        return True

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient:
    """The same calls for asyncio code: ``async with AsyncClient(url) as client: ...``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        timeout: float = 10.0,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        headers = _auth_headers(token)
        self._http = httpx.AsyncClient(
            base_url=url, timeout=timeout, headers=headers, transport=transport
        )

    async def _response(self, call: Call) -> httpx.Response:
        try:
            return await self._http.request(call.method, call.path, **_request_args(call))
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None

    async def send(self, call: Call) -> Any:
        return _decode(await self._response(call), call)

    async def submit(
        self,
        task: str | None,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobOut:
        return calls.job(await self.send(Calls.submit(task, payload, idempotency_key, **options)))

    async def submit_many(self, jobs: Sequence[dict[str, Any]]) -> BatchOut:
        return calls.batch(await self.send(Calls.submit_many(jobs)))

    async def get(self, job_id: str, *, wait: float = 0) -> JobOut:
        return calls.job(await self.send(Calls.get(job_id, wait)))

    async def wait(self, job_id: str, timeout: float = 60.0) -> JobOut:
        for wait in _wait_slices(timeout):
            job = await self.get(job_id, wait=wait)
            if job.status.terminal:
                break
        return job

    async def list_jobs(
        self,
        *,
        status: Statuses = (),
        queue: str | None = None,
        task: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[JobOut]:
        call: Call | None = Calls.list(status, queue, task, page_size)
        while call is not None:
            response = await self._response(call)
            for job in calls.jobs(_decode(response, call)):
                yield job
            call = _next_page(response)

    async def cancel(self, job_id: str) -> JobOut:
        return calls.job(await self.send(Calls.cancel(job_id)))

    async def retry(self, job_id: str) -> JobOut:
        return calls.job(await self.send(Calls.retry(job_id)))

    async def delete(self, job_id: str) -> None:
        await self.send(Calls.delete(job_id))

    async def attempts(self, job_id: str) -> list[AttemptOut]:
        return calls.attempts(await self.send(Calls.attempts(job_id)))

    async def bulk(
        self,
        action: BulkAction,
        *,
        status: Statuses = (),
        queue: str | None = None,
        task: str | None = None,
        created_before: datetime | float | None = None,
    ) -> BulkOut:
        call = Calls.bulk(action, status, queue, task, created_before)
        return calls.bulk(await self.send(call))

    async def tasks(self) -> list[TaskOut]:
        return calls.tasks(await self.send(Calls.tasks()))

    async def queues(self) -> list[QueueOut]:
        return calls.queues(await self.send(Calls.queues()))

    async def update_queue(self, name: str, **limits: Unpack[QueueLimits]) -> QueueOut:
        return calls.queue(await self.send(Calls.update_queue(name, limits)))

    async def pause_queue(self, name: str) -> QueueOut:
        return calls.queue(await self.send(Calls.pause_queue(name)))

    async def resume_queue(self, name: str) -> QueueOut:
        return calls.queue(await self.send(Calls.pause_queue(name, pause=False)))

    async def schedules(self) -> list[ScheduleOut]:
        return calls.schedules(await self.send(Calls.schedules()))

    async def pause_schedule(self, name: str) -> ScheduleOut:
        return calls.schedule(await self.send(Calls.pause_schedule(name)))

    async def resume_schedule(self, name: str) -> ScheduleOut:
        return calls.schedule(await self.send(Calls.pause_schedule(name, pause=False)))

    async def workers(self) -> list[WorkerOut]:
        return calls.workers(await self.send(Calls.workers()))

    async def ready(self) -> bool:
        try:
            await self.send(Calls.ready())
        except ServerUnavailable:
            return False
        return True

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
