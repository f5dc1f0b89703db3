"""Routes called without FastAPI's per-request machinery, where it has nothing to do.

A route whose endpoint takes only the ``Request`` and returns a ``Response`` (it reads and
checks its own body and headers: http.inputs) gets nothing from FastAPI's request handler but
its cost: the dependency solving, two exit stacks and the response checks are some 30 us of
CPU per request, a tenth of a ``POST /jobs``. Such a route keeps its ``APIRoute`` (the OpenAPI
description, the routing, the exception handlers are unchanged) and is called the way
Starlette calls a plain route. When FastAPI's own OpenTelemetry instrumentation is on for the
request, FastAPI's handler runs as before, so its operation spans are not lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute, APIRouter
from fastapi.telemetry import get_telemetry_data
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def lean(router: APIRouter, endpoint: Callable[..., Any]) -> None:
    """Call ``endpoint``'s routes in ``router`` as plain Starlette routes (see above)."""
    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint]
    if not routes:
        raise ValueError(f"no route of {router!r} calls {endpoint!r}")
    for route in routes:
        if _has_parameters(route):
            raise ValueError(f"{route.path} has parameters for FastAPI to solve")
        route.app = _lean_app(route.app, request_response(endpoint))


def _has_parameters(route: APIRoute) -> bool:
    found = route.dependant
    return bool(
        found.dependencies
        or found.path_params
        or found.query_params
        or found.header_params
        or found.cookie_params
        or found.body_params
    )


def _lean_app(
    full: Callable[[Scope, Receive, Send], Awaitable[None]],
    plain: Callable[[Scope, Receive, Send], Awaitable[None]],
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if get_telemetry_data() is not None:  # FastAPI traces its operations: its handler
            await full(scope, receive, send)
        else:
            await plain(scope, receive, send)

    return app
