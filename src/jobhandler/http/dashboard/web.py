"""What every dashboard page shares: templates, links under any mount point, security headers,
and the error pages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobhandler.client.wire import rfc3339
from jobhandler.http.dashboard.forms import BadForm
from jobhandler.http.dashboard.session import (
    Forbidden,
    NotSignedIn,
    Sessions,
    Viewer,
    mount_point,
    set_session,
)
from jobhandler.http.token_cache import TokenCache
from jobhandler.model.errors import (
    InvalidJob,
    InvalidTransition,
    JobHandlerError,
    JobNotFound,
    StoreUnavailable,
)
from jobhandler.service.workflows import WorkflowNotFound
from jobhandler.settings import Settings

if TYPE_CHECKING:
    from jobhandler.service import Service

# Scripts and styles only from the package's own files: an injected tag or attribute cannot run.
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds ``HEADERS`` to every answer, and ``no-store`` to pages (they hold CSRF tokens)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
                if not static:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def ago(ts: float | None, now: float | None = None) -> str:
    """How long ago (or, for a time ahead, in how long), in the largest whole unit."""
    if ts is None:
        return ""
    delta = (now or time.time()) - ts
    ahead, delta = delta < 0, abs(delta)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if delta >= size or size == 1:
            text = f"{int(delta // size)} {unit}"
            return f"in {text}" if ahead else f"{text} ago"
    return ""  # pragma: no cover - the loop always returns


def clock(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jobhandler.http.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # an attribute another feature adds may be absent
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, rfc3339=rfc3339, pretty=pretty, clock=clock)
    return env


class Dashboard:
    """The service behind the dashboard, its sessions, and how pages are rendered."""

    def __init__(
        self, service: Callable[[], Service], settings: Settings | None, tokens: TokenCache
    ) -> None:
        self._service = service  # the connected App's, asked for at each request
        self._settings = settings
        self.sessions = Sessions(tokens)
        self.templates = Jinja2Templates(env=_environment())

    @property
    def service(self) -> Service:
        return self._service()

    @property
    def settings(self) -> Settings:
        return self._settings or self.service.settings

    def render(
        self,
        request: Request,
        viewer: Viewer | None,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        context.update(request=request, viewer=viewer, link=links(request), now=time.time())
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        if viewer is not None and viewer.fresh:
            set_session(request, response, viewer.cookie)
        return response


def dashboard(request: Request) -> Dashboard:
    return cast(Dashboard, request.app.state.dashboard)


def links(request: Request) -> Callable[..., str]:
    """``link(name, **params, query={...})``: a route's path under wherever the dashboard is
    mounted (root-relative: right behind a proxy that keeps the path, whatever its scheme)."""
    root = mount_point(request)

    def link(route: str, /, query: dict[str, Any] | None = None, **params: Any) -> str:
        path = root + str(request.app.url_path_for(route, **params))
        wanted = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return f"{path}?{urlencode(wanted, doseq=True)}" if wanted else path

    return link


def redirect(request: Request, name: str, **params: Any) -> Response:
    """After a form: 303, so a reload of the next page repeats no action."""
    return RedirectResponse(links(request)(name, **params), status_code=303)


async def _error(request: Request, exc: Exception) -> Response:
    status, message = 500, "something went wrong"
    if isinstance(exc, NotSignedIn):
        login = links(request)("login", query={"next": _here(request)})
        if request.method == "GET":
            return RedirectResponse(login, status_code=303)
        status, message = 401, "sign in first"
    elif isinstance(exc, Forbidden):
        status, message = 403, str(exc)
    elif isinstance(exc, JobNotFound):
        status, message = 404, "no such job"
    elif isinstance(exc, WorkflowNotFound):
        status, message = 404, "no such workflow"
    elif isinstance(exc, InvalidTransition | InvalidJob):
        status, message = (409 if isinstance(exc, InvalidTransition) else 422), str(exc)
    elif isinstance(exc, BadForm):
        status, message = exc.status, str(exc)
    elif isinstance(exc, StoreUnavailable):
        status, message = 503, f"the store is unavailable: {exc}"
    elif isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    elif isinstance(exc, LookupError):  # an unknown schedule, say
        status, message = 404, str(exc)
    elif isinstance(exc, JobHandlerError):  # any other refusal the App explains
        status, message = 400, str(exc)
    return dashboard(request).render(request, None, "error.html", status, message=message)


def _here(request: Request) -> str:
    """The page asked for, relative to the dashboard: where to go back after signing in."""
    path = request.url.path.removeprefix(mount_point(request)) or "/"
    return f"{path}?{request.url.query}" if request.url.query else path


ERRORS: dict[Any, Callable[[Request, Exception], Any]] = {
    e: _error
    for e in (
        NotSignedIn,
        Forbidden,
        JobNotFound,
        InvalidTransition,
        InvalidJob,
        BadForm,
        StoreUnavailable,
        HTTPException,
        JobHandlerError,
    )
}
