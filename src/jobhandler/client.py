"""Clients for the HTTP API, sync and async, over httpx. Jobs come back as plain dicts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from jobhandler.errors import JobHandlerError
from jobhandler.jobs import TERMINAL as TERMINAL_STATUSES

DEFAULT_URL = "http://127.0.0.1:8080"
TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)


class ClientError(JobHandlerError):
    """The server answered with an error; ``status`` and the problem ``body`` say which."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ServerUnreachable(ClientError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach the server at {url}: {reason}")


@dataclass(frozen=True, slots=True)
class Call:
    """One API call, described once and sent by either client."""

    method: str
    path: str
    params: list[tuple[str, Any]] = field(default_factory=list)
    body: Any = None
    timeout: float | None = None


def _submit_body(task: str | None, payload: Any, options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"payload": payload}
    if task is not None:
        body["task"] = task
    body.update({k: v for k, v in options.items() if v is not None})
    return body


class Calls:
    """The API's calls. ``wait`` holds a GET until the job is terminal (at most 60 s)."""

    @staticmethod
    def submit(task: str | None, payload: Any, **options: Any) -> Call:
        return Call("POST", "/jobs", body=_submit_body(task, payload, options))

    @staticmethod
    def submit_many(jobs: list[dict[str, Any]]) -> Call:
        return Call("POST", "/jobs/batch", body={"jobs": jobs})

    @staticmethod
    def get(job_id: str, wait: float = 0) -> Call:
        params = [("wait", wait)] if wait else []
        return Call("GET", f"/jobs/{job_id}", params, timeout=wait + 10 if wait else None)

    @staticmethod
    def list(
        statuses: list[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Call:
        params: list[tuple[str, Any]] = [("status", s) for s in statuses or []]
        params += [(k, v) for k, v in (("queue", queue), ("task", task), ("cursor", cursor)) if v]
        params.append(("limit", limit))
        return Call("GET", "/jobs", params)

    @staticmethod
    def cancel(job_id: str) -> Call:
        return Call("POST", f"/jobs/{job_id}/cancel", timeout=30)

    @staticmethod
    def retry(job_id: str) -> Call:
        return Call("POST", f"/jobs/{job_id}/retry")

    @staticmethod
    def delete(job_id: str) -> Call:
        return Call("DELETE", f"/jobs/{job_id}")

    @staticmethod
    def tasks() -> Call:
        return Call("GET", "/tasks")

    @staticmethod
    def queues() -> Call:
        return Call("GET", "/queues")

    @staticmethod
    def workers() -> Call:
        return Call("GET", "/workers")

    @staticmethod
    def ready() -> Call:
        return Call("GET", "/readyz")


def _auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204:
        return None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.is_error:
        message = body.get("error") if isinstance(body, dict) else None
        raise ClientError(response.status_code, message or f"HTTP {response.status_code}", body)
    return body


def _request_args(call: Call) -> dict[str, Any]:
    args: dict[str, Any] = {"params": call.params}
    if call.body is not None:
        args["json"] = call.body
    if call.timeout is not None:
        args["timeout"] = call.timeout
    return args


class Client:
    """``Client(url).send(Calls.submit("reverse", "abc"))``; or the shortcuts below."""

    def __init__(
        self, url: str = DEFAULT_URL, timeout: float = 10.0, *, token: str | None = None
    ) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=timeout, headers=_auth_headers(token))

    def send(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, **_request_args(call))
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        return _decode(response)

    def submit(self, task: str | None, payload: Any, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.send(Calls.submit(task, payload, **options))
        return result

    def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Hold until the job is terminal; returns it as it stands after ``timeout``."""
        job: dict[str, Any] = {}
        for wait in _wait_slices(timeout):
            job = self.send(Calls.get(job_id, wait=wait))
            if job["status"] in TERMINAL:
                break
        return job

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient:
    """The same calls for asyncio code: ``await AsyncClient(url).send(Calls.get(id))``."""

    def __init__(
        self, url: str = DEFAULT_URL, timeout: float = 10.0, *, token: str | None = None
    ) -> None:
        self.url = url
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout, headers=_auth_headers(token))

    async def send(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, **_request_args(call))
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, str(exc) or type(exc).__name__) from None
        return _decode(response)

    async def submit(self, task: str | None, payload: Any, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.send(Calls.submit(task, payload, **options))
        return result

    async def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        job: dict[str, Any] = {}
        for wait in _wait_slices(timeout):
            job = await self.send(Calls.get(job_id, wait=wait))
            if job["status"] in TERMINAL:
                break
        return job

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _wait_slices(timeout: float) -> Iterator[float]:
    """Server-side waits (each at most 60 s) that together last ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        yield min(remaining, 60.0)
        if remaining <= 0:
            return
