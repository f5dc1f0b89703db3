"""RFC 9457 problem JSON: the one shape of every error the API answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from jobhandler.model.errors import (
    DiskFull,
    InvalidJob,
    InvalidTransition,
    JobHandlerError,
    JobNotFound,
    KeyNotAllowed,
    StoreUnavailable,
    UniqueKeyHeld,
)
from jobhandler.model.validation import field_errors
from jobhandler.model.workflows import WorkflowKeyHeld
from jobhandler.service.workflows import WorkflowNotFound

PROBLEM = "application/problem+json"
log = logging.getLogger("jobhandler.http")
# RFC 9110's names where they differ from the older ones Python knows.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


class Problem(JobHandlerError):
    """An RFC 9457 problem; the message is also under ``error``, as the Go service had it."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


class ProblemResponse(JSONResponse):
    media_type = PROBLEM

    def render(self, content: Any) -> bytes:
        # ASCII escapes: a field name echoed from a request may hold a lone surrogate, which
        # could not be encoded as UTF-8; escaped, the answer is still valid JSON.
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def problem_response(
    status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    try:
        title = _TITLES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": message,
        "error": message,
        **extra,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


async def _held(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, UniqueKeyHeld)
    return problem_response(409, str(exc), job_status=exc.status, holder=exc.holder)


async def _keys_held(_: Request, exc: Exception) -> Response:
    """A workflow refused because other jobs hold some of its unique keys: each key's holder."""
    assert isinstance(exc, WorkflowKeyHeld)
    return problem_response(409, str(exc), holders=exc.holders)


async def _disk_full(_: Request, exc: Exception) -> Response:
    """Not logged: the store logged entering the state, and each refused call would say it
    again. The detail is the one explanation, whatever SQLite's message was."""
    assert isinstance(exc, DiskFull)
    headers = {"Retry-After": str(exc.retry_after)}
    return problem_response(503, DiskFull.explained, headers=headers)


async def _other_key(_: Request, exc: Exception) -> Response:
    """A caller bound to a concurrency key named another (service/tenancy.py)."""
    return problem_response(403, str(exc))


def install_error_handlers(api: FastAPI) -> None:
    """Every error as problem JSON: those the service raises on purpose, and any other."""

    async def problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, str(exc), **exc.extra)

    async def not_found(_: Request, exc: Exception) -> Response:
        return problem_response(404, str(exc))

    async def conflict(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidTransition)
        return problem_response(409, str(exc), job_status=exc.status)

    async def unprocessable(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidJob)
        return problem_response(422, str(exc), errors=exc.errors)

    async def unavailable(_: Request, exc: Exception) -> Response:
        log.warning("store unavailable: %s", exc)  # the details stay in the server's log
        return problem_response(503, "store unavailable")

    async def client_gone(_: Request, exc: Exception) -> Response:
        # The client left (or was cut off by a read timeout) while sending its body: not a bug,
        # nothing to log, and nobody to answer; the response is dropped.
        return problem_response(400, "the client went away")

    async def internal(request: Request, exc: Exception) -> Response:
        # A bug: its traceback goes to the log, never to the client (it can show internals).
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "internal error")

    async def bad_parameters(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        message = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        return problem_response(422, message, errors=errors)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, str(exc.detail), headers=headers)

    api.add_exception_handler(Problem, problem)
    api.add_exception_handler(JobNotFound, not_found)
    api.add_exception_handler(WorkflowNotFound, not_found)
    api.add_exception_handler(WorkflowKeyHeld, _keys_held)
    api.add_exception_handler(KeyNotAllowed, _other_key)
    api.add_exception_handler(InvalidTransition, conflict)
    api.add_exception_handler(UniqueKeyHeld, _held)  # an InvalidTransition naming its holder
    api.add_exception_handler(InvalidJob, unprocessable)
    api.add_exception_handler(StoreUnavailable, unavailable)
    api.add_exception_handler(DiskFull, _disk_full)  # a StoreUnavailable with its own answer
    api.add_exception_handler(RequestValidationError, bad_parameters)
    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(ClientDisconnect, client_gone)
    api.add_exception_handler(Exception, internal)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette names only the first route's).

    A fixed path wins over a pattern that also matches it: ``/jobs/batch`` is not a job id.
    """
    # Route contexts: the routes of included routers too, as this application serves them.
    matching = [
        route
        for route in iter_route_contexts(request.app.router.routes)
        if route.matches(request.scope)[0] is not Match.NONE
    ]
    fixed = [route for route in matching if not getattr(route, "param_convertors", None)]
    methods: set[str] = set()
    for route in fixed or matching:
        methods |= route.methods or set()
    return sorted(methods)
