"""Clients for the whole HTTP API, sync and async, over httpx.

Each call is described once (``calls.Calls``, with the client method's parameters) and sent by
either client; answers come back as the server's own wire models (``JobOut``, ``TaskOut``,
``QueueOut``, ... from client/wire.py, times in epoch seconds as on ``Job``), and error answers
(RFC 9457 problem JSON) as exceptions (model/errors.py): ``Unprocessable`` is an ``InvalidJob``,
a missing job a ``JobNotFound``, and every one a ``ClientError`` with the HTTP ``status`` and the
problem ``body``. ``send`` gives the raw JSON, for the CLI. A request that met a connection the
server closed is sent again, at most ``retries`` times (2), where that cannot apply it twice: an
idempotent method, an ``Idempotency-Key``, or a connection refused (client/resend.py).

Why a descriptor rather than two written clients, or one generated from the other: a method
that sends one call and reads its answer is nothing but that pair, so it is declared once, as
``get = Method(Calls.get, calls.job)`` on ``Methods``, the base of both clients. Its ``__get__``
is overloaded on the client's class: mypy sees ``Client.get`` as ``(job_id: str, *, wait:
float = 0) -> JobOut`` and ``AsyncClient.get`` as the same parameters giving a coroutine of a
``JobOut`` (the parameters are ``Calls.get``'s, carried by a ``ParamSpec``); at run time it gives
a plain function on a ``Client`` and a coroutine function on an ``AsyncClient``. Code generation
(unasync) would keep two copies of every method in the repository, and a test to keep them
equal; here a new call is one line. The methods that are more than one call (``wait``,
``list_jobs``, ``ready``) stay written per client, where each ``await`` is plain to read.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import httpx

from jobhandler.client import calls
from jobhandler.client.calls import Call, Calls
from jobhandler.client.resend import DEFAULT_RETRIES, Sends
from jobhandler.model.errors import ClientError, ServerUnavailable, ServerUnreachable, problem_error
from jobhandler.model.jobs import TERMINAL as TERMINAL_STATUSES

if TYPE_CHECKING:
    from jobhandler.client.wire import JobOut

# Kept importable from here: the CLI and older code import them from this module.
__all__ = ["DEFAULT_URL", "TERMINAL", "AsyncClient", "Call", "Calls", "Client", "ClientError"]
__all__ += ["ServerUnreachable"]

DEFAULT_URL = "http://127.0.0.1:8080"
# Idle connections are let go after 2 s, before the server's keep-alive (5 s by default) closes
# them: a request then rarely meets a connection the server is closing (client/resend.py).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)
TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
Statuses = Sequence[str]
Params = ParamSpec("Params")
Answer = TypeVar("Answer")


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


def _retries(retries: int) -> int:
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, not {retries}")
    return retries


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


class Method(Generic[Params, Answer]):
    """A client method made of a call's description and the reader of its answer.

    ``client.get(job_id)`` is ``calls.job(client.send(Calls.get(job_id)))`` on a ``Client``,
    and the same awaited on an ``AsyncClient``.
    """

    def __init__(self, describe: Callable[Params, Call], read: Callable[[Any], Answer]) -> None:
        self.describe = describe
        self.read = read
        self.__doc__ = describe.__doc__
        # help() and inspect.signature show the call's parameters, not (*args, **kwargs).
        self.signature = inspect.signature(describe).replace(
            return_annotation=inspect.Signature.empty
        )
        self.name = describe.__name__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Method[Params, Answer]: ...
    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[Params, Answer]: ...
    @overload
    def __get__(
        self, client: AsyncClient, owner: type[Any]
    ) -> Callable[Params, Coroutine[Any, Any, Answer]]: ...
    def __get__(self, client: Client | AsyncClient | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        method: Any = (
            self._sending(client) if isinstance(client, Client) else self._awaiting(client)
        )
        method.__name__ = self.name
        method.__qualname__ = f"{type(client).__name__}.{self.name}"
        method.__doc__ = self.__doc__
        method.__signature__ = self.signature
        return method

    def _sending(self, client: Client) -> Callable[Params, Answer]:
        def method(*args: Params.args, **kwargs: Params.kwargs) -> Answer:
            return self.read(client.send(self.describe(*args, **kwargs)))

        return method

    def _awaiting(self, client: AsyncClient) -> Callable[Params, Coroutine[Any, Any, Answer]]:
        # A coroutine function, as a method written with async def is (iscoroutinefunction).
        async def method(*args: Params.args, **kwargs: Params.kwargs) -> Answer:
            return self.read(await client.send(self.describe(*args, **kwargs)))

        return method


class Methods:
    """The methods both clients share, each one call: declared once, here."""

    submit = Method(Calls.submit, calls.job)
    submit_many = Method(Calls.submit_many, calls.batch)
    get = Method(Calls.get, calls.job)
    cancel = Method(Calls.cancel, calls.job)
    retry = Method(Calls.retry, calls.job)
    delete = Method(Calls.delete, calls.nothing)
    attempts = Method(Calls.attempts, calls.attempts)
    bulk = Method(Calls.bulk, calls.bulk)
    tasks = Method(Calls.tasks, calls.tasks)
    queues = Method(Calls.queues, calls.queues)
    update_queue = Method(Calls.update_queue, calls.queue)
    pause_queue = Method(Calls.pause_queue, calls.queue)
    resume_queue = Method(Calls.resume_queue, calls.queue)
    schedules = Method(Calls.schedules, calls.schedules)
    pause_schedule = Method(Calls.pause_schedule, calls.schedule)
    resume_schedule = Method(Calls.resume_schedule, calls.schedule)
    workers = Method(Calls.workers, calls.workers)
    submit_workflow = Method(Calls.submit_workflow, calls.workflow)
    get_workflow = Method(Calls.get_workflow, calls.workflow)
    list_workflows = Method(Calls.list_workflows, calls.workflows)
    cancel_workflow = Method(Calls.cancel_workflow, calls.workflow)


class Client(Methods):
    """``with Client(url, token=...) as client: job = client.submit("reverse", "abc")``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        timeout: float = 10.0,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.url = url
        self.retries = _retries(retries)
        headers = _auth_headers(token)
        self._http = httpx.Client(
            base_url=url, timeout=timeout, headers=headers, transport=transport, limits=LIMITS
        )

    def _response(self, call: Call) -> httpx.Response:
        sends = Sends(call, self.url, self.retries)
        while True:
            try:
                return self._http.request(call.method, call.path, **_request_args(call))
            except httpx.TransportError as exc:
                pause = sends.failed(exc)
            time.sleep(pause)

    def send(self, call: Call) -> Any:
        """The answer's JSON as it came (None for 204); an error answer raises."""
        return _decode(self._response(call), call)

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


class AsyncClient(Methods):
    """The same calls for asyncio code: ``async with AsyncClient(url) as client: ...``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        timeout: float = 10.0,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.url = url
        self.retries = _retries(retries)
        headers = _auth_headers(token)
        self._http = httpx.AsyncClient(
            base_url=url, timeout=timeout, headers=headers, transport=transport, limits=LIMITS
        )

    async def _response(self, call: Call) -> httpx.Response:
        sends = Sends(call, self.url, self.retries)
        while True:
            try:
                return await self._http.request(call.method, call.path, **_request_args(call))
            except httpx.TransportError as exc:
                pause = sends.failed(exc)
            await asyncio.sleep(pause)

    async def send(self, call: Call) -> Any:
        """The answer's JSON as it came (None for 204); an error answer raises."""
        return _decode(await self._response(call), call)

    async def wait(self, job_id: str, timeout: float = 60.0) -> JobOut:
        """Hold until the job is terminal; returns it as it stands after ``timeout``."""
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
        """Every matching job, newest first, fetched a page at a time as you iterate."""
        call: Call | None = Calls.list(status, queue, task, page_size)
        while call is not None:
            response = await self._response(call)
            for job in calls.jobs(_decode(response, call)):
                yield job
            call = _next_page(response)

    async def ready(self) -> bool:
        """Whether the server can reach its store."""
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
