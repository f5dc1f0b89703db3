"""Who may call the API: Host names, bearer tokens and scopes, cross-site requests, JSON bodies.

One pure ASGI middleware checks every HTTP request, cheapest and most general check first:

1. ``Host`` must be an allowed name (400): a server bound to loopback answers only to the
   loopback names, so a DNS-rebinding page cannot read it. Health checks skip this, for probes
   that address the server by IP.
2. On a closed server a request needs ``Authorization: Bearer <token>`` (401) of a scope that
   allows it (403). ``/healthz`` and ``/readyz`` stay open.
3. A state-changing request from a browser page of another origin is refused (403, CSRF), even
   with no body: only the server's own origin and ``cors_origins`` may send one.
4. A state-changing request with a body must say ``Content-Type: application/json`` (415), so a
   plain HTML form or a "simple" cross-site request cannot carry one.

The dashboard (``own_auth`` paths) signs its users in with a session cookie and checks their
scope, CSRF token and form bodies itself (http/dashboard/session.py); here it gets checks 1 and 3.

Tokens are looked up in the server's cache (http/token_cache.py): a request costs no store
query, and a new or revoked token takes effect within about a second.

Open or closed: a server is closed from its start when it binds beyond loopback without
``--insecure-no-auth`` or when the store holds a token as it starts, and it closes the moment a
token appears. Closing is one-way, for the life of the process: revoking the last token leaves
a closed server refusing everyone (and saying so in its log), never open to whoever reaches it.
One cache per server holds that state, shared by the API and the dashboard (``server_tokens``).

A token bound to a concurrency key reaches only the routes of one tenant (model/tokens.py's
``bound_allows``), and the request runs with its key in ``tenancy.CALLER_KEY``: the service
gives the key to the jobs it submits and hides other keys' jobs (service/tenancy.py).

A stream outlasts the check made when it opened, so the middleware leaves the request's
``Grant`` in the ASGI scope, for the stream to ask again while it lasts (``grant_of``).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobhandler.client.wire import SHOW_TRACEBACKS
from jobhandler.http.problems import problem_response
from jobhandler.http.token_cache import GRANT_KEY, Grant, TokenCache
from jobhandler.model.errors import StoreUnavailable
from jobhandler.model.tokens import PUBLIC_PATHS, hash_token, shows_tracebacks
from jobhandler.service.tenancy import CALLER_KEY
from jobhandler.settings import Settings

if TYPE_CHECKING:
    from jobhandler.service import Service

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_SCHEME = "bearerAuth"


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The name part of a Host header or an allowed-hosts entry, lower case, without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] or value
    if value.count(":") > 1:  # a bare IPv6 address in an allowed-hosts entry
        return f"[{value}]"
    return value.partition(":")[0]


def allowed_host_names(settings: Settings) -> frozenset[str] | None:
    """The Host names the API answers; None for any."""
    if "*" in settings.allowed_hosts:
        return None
    if settings.allowed_hosts:
        return frozenset(host_name(h) for h in settings.allowed_hosts)
    return LOOPBACK_NAMES if is_loopback(settings.host) else None


def starts_closed(settings: Settings) -> bool:
    """Whether a server needs tokens before the store holds any: a network bind, unless told."""
    return not is_loopback(settings.host) and not settings.insecure_no_auth


def server_tokens(service: Callable[[], Service], settings: Settings | None = None) -> TokenCache:
    """The one token cache of a server: its API and its dashboard open and close together.
    ``service``: the connected App's, asked for at each read (the server is made before the
    App connects). Without ``settings`` (a dashboard mounted in another application) it is
    open until the store holds a token."""
    return TokenCache(
        lambda: service().tokens.known(),
        lambda hashes: service().tokens.touch(hashes),
        closed=settings is not None and starts_closed(settings),
    )


def _headers(scope: Scope) -> dict[bytes, bytes]:
    wanted = (b"host", b"authorization", b"origin", b"content-type", b"content-length")
    found = {name: value for name, value in scope["headers"] if name in wanted}
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            found[name] = value
    return found


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length", b"").strip()
    chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
    return chunked or (length.isdigit() and int(length) > 0)


def _without_default_port(netloc: str) -> str:
    return netloc.removesuffix(":80").removesuffix(":443")


def same_origin(origin: str, host: str) -> bool:
    """Whether an ``Origin`` header names the server that the ``Host`` header addresses."""
    netloc = origin.strip().lower().rstrip("/").partition("://")[2]
    return bool(netloc) and _without_default_port(netloc) == _without_default_port(
        host.strip().lower()
    )


class AccessControl:
    """The checks of this module, as pure ASGI middleware (no per-request task or copy)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenCache,
        allowed_hosts: frozenset[str] | None,
        cors_origins: frozenset[str],
        own_auth: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.allowed_hosts = allowed_hosts
        self.cors_origins = cors_origins
        self.own_auth = own_auth  # path prefixes that check tokens and bodies themselves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._reading_tokens_at_startup(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            refusal, grant = await self._check(scope)
        except StoreUnavailable as exc:
            refusal, grant = problem_response(503, f"store unavailable: {exc}"), None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if grant is not None:
            scope[GRANT_KEY] = grant
        shown = SHOW_TRACEBACKS.set(shows_tracebacks(grant.token_scope if grant else None))
        tenant = CALLER_KEY.set(grant.concurrency_key if grant else None)
        try:
            await self.app(scope, receive, send)
        finally:
            CALLER_KEY.reset(tenant)
            SHOW_TRACEBACKS.reset(shown)

    def _reading_tokens_at_startup(self, send: Send) -> Send:
        """The lifespan's ``send``, reading the tokens once the store is connected and before
        any request: a token the store holds at the start closes the server, even if it is
        revoked before anyone calls."""

        async def send_after_reading(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                with contextlib.suppress(StoreUnavailable):  # then the first request reads
                    await self.tokens.known()
            await send(message)

        return send_after_reading

    async def _check(self, scope: Scope) -> tuple[Response | None, Grant | None]:
        """A refusal, or None and what let the caller in (None: a path not checked here)."""
        path: str = scope["path"]
        if path in PUBLIC_PATHS:
            return None, None
        method: str = scope["method"]
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return problem_response(400, "this server does not answer to that Host name"), None
        if path == "/" or path.startswith(self.own_auth):
            if method in STATE_CHANGING and not self._same_site(headers.get(b"origin"), host):
                return problem_response(403, "cross-origin requests may not change state"), None
            return None, None
        granted = await self._authenticate(headers, method, path)
        if isinstance(granted, Response):
            return granted, None
        if method in STATE_CHANGING:
            if not self._same_site(headers.get(b"origin"), host):
                return problem_response(403, "cross-origin requests may not change state"), None
            if _has_body(headers) and not _is_json(
                headers.get(b"content-type", b"").decode("latin-1")
            ):
                return problem_response(415, "the request body must be application/json"), None
        return None, granted

    async def _authenticate(
        self, headers: dict[bytes, bytes], method: str, path: str
    ) -> Grant | Response:
        known = await self.tokens.known()
        if not self.tokens.closed:  # no token yet: the API is open, as it always was
            return Grant(self.tokens, None, None, method, path)
        kind, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return _unauthorized("an API token is required: Authorization: Bearer <token>")
        token_hash = hash_token(token.strip())
        access = known.get(token_hash)
        if access is None:  # unknown, revoked, or none left on a closed server
            return _unauthorized("the API token is not valid", invalid=True)
        self.tokens.used(token_hash)
        if not access.allows(method, path):
            bound = "" if access.concurrency_key is None else " bound to a concurrency key"
            return problem_response(
                403, f"a {access.scope} token{bound} may not {method} {path}", scope=access.scope
            )
        return Grant(self.tokens, token_hash, access.scope, method, path, access.concurrency_key)

    def _same_site(self, origin_header: bytes | None, host: str) -> bool:
        """No ``Origin`` (not a browser's cross-site request), this server's, or a CORS one."""
        if origin_header is None:
            return True
        origin = origin_header.decode("latin-1").strip().lower().rstrip("/")
        if origin in self.cors_origins or "*" in self.cors_origins:
            return True
        return same_origin(origin, host)


def _unauthorized(message: str, *, invalid: bool = False) -> Response:
    response = problem_response(401, message)
    response.headers["WWW-Authenticate"] = (
        'Bearer error="invalid_token"' if invalid else 'Bearer realm="jobhandler"'
    )
    return response


def install_access_control(
    api: FastAPI, tokens: TokenCache, settings: Settings, own_auth: tuple[str, ...] = ()
) -> None:
    """Put the access checks (and CORS, when origins are set) in front of every route.

    ``own_auth``: path prefixes (the dashboard's) that sign in and check scopes themselves,
    sharing ``tokens`` (the server's, from ``server_tokens``) so they close with the API.
    """
    api.add_middleware(
        AccessControl,
        tokens=tokens,
        allowed_hosts=allowed_host_names(settings),
        cors_origins=frozenset(o.lower().rstrip("/") for o in settings.cors_origins),
        own_auth=own_auth,
    )
    if settings.cors_origins:
        # Added last, so it runs first: a preflight carries no token and is answered here.
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=[
                "Location",
                "Link",
                "Idempotent-Replayed",
                "X-Jobhandler-Unserved-Queues",
            ],
            max_age=600,
        )
    _declare_bearer(api)


def _declare_bearer(api: FastAPI) -> None:
    """The bearer scheme in the OpenAPI description: required once the store holds a token."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (`jobhandler token create`). Required on every route"
            " but /healthz and /readyz once the store holds any token; until then the API is"
            " open.",
        }
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if isinstance(operation, dict):
                    # `{}` as an alternative: a server with no token yet takes requests without.
                    operation["security"] = (
                        [] if path in PUBLIC_PATHS else [{SECURITY_SCHEME: []}, {}]
                    )
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
