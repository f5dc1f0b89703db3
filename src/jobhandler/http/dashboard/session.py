"""Who is looking at the dashboard: a session cookie, what its token's scope allows, CSRF.

A browser cannot send ``Authorization: Bearer`` on a plain link or form, so the dashboard keeps
the API token in a cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page
makes the browser send it), Secure behind HTTPS, scoped to the dashboard's path. The cookie
carries the token itself rather than a signed session: every API server of a deployment checks
it against the store's token table with no shared secret to configure, and revoking the token
ends the session within ``TOKEN_CACHE_SECONDS``. While the server is open (no token yet) the
dashboard is open, like the API, and the cookie holds a random value only for CSRF; the server's
one token cache decides, so the dashboard opens and closes with the API (http/auth.py).

A token bound to a concurrency key (one tenant's, docs/tenants.md) cannot sign in: every page
shows every tenant's jobs, queues and workers. Its cookie, if one was set before, is refused.

Every state change needs the session's CSRF token: an HMAC of the cookie's value, rendered into
the page, so a page of another site can neither read nor compute it (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from jobhandler.http.auth import same_origin
from jobhandler.http.token_cache import Grant, TokenCache
from jobhandler.model.errors import JobHandlerError
from jobhandler.model.tokens import Scope, allows, hash_token, shows_tracebacks

COOKIE = "jobhandler_session"
OPEN_PREFIX = "open."  # the cookie of an open dashboard: no token, only a CSRF secret
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class NotSignedIn(JobHandlerError):
    """The server is closed and this browser sent no valid token: show the login form."""


class Forbidden(JobHandlerError):
    """The session's token may not do this (403), or a state change lacked its CSRF token."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The browser behind a request: its token's scope (None: an open dashboard)."""

    scope: Scope | None
    cookie: str  # the session cookie's value, possibly minted for this response
    fresh: bool = False  # the cookie was minted now and must be set on the response

    @property
    def csrf(self) -> str:
        return csrf_token(self.cookie)

    @property
    def tracebacks(self) -> bool:
        return shows_tracebacks(self.scope)

    def may(self, method: str, api_path: str) -> bool:
        """Whether the API would let this session's token make that request."""
        return self.scope is None or allows(self.scope, method, api_path)


def csrf_token(cookie: str) -> str:
    return hmac.new(cookie.encode(), b"jobhandler-dashboard-csrf", hashlib.sha256).hexdigest()


class Sessions:
    """Checks sessions against the store's tokens (through the server's cache, ``tokens``;
    a dashboard mounted on its own gets a cache of its own)."""

    def __init__(self, tokens: TokenCache) -> None:
        self.tokens = tokens

    async def viewer(self, request: Request, method: str, api_path: str) -> Viewer:
        """The viewer, if the API would let them make ``method api_path``.

        Raises NotSignedIn (no valid session on a closed server) or Forbidden.
        """
        known = await self.tokens.known()
        cookie = request.cookies.get(COOKIE, "")
        if not self.tokens.closed:
            if cookie.startswith(OPEN_PREFIX):
                return Viewer(None, cookie)
            return Viewer(None, OPEN_PREFIX + secrets.token_urlsafe(24), fresh=True)
        token_hash = hash_token(cookie)
        access = known.get(token_hash) if cookie and not cookie.startswith(OPEN_PREFIX) else None
        if access is None or access.concurrency_key is not None:
            raise NotSignedIn()
        scope = access.scope
        self.tokens.used(token_hash)
        viewer = Viewer(scope, cookie)
        if not viewer.may(method, api_path):
            raise Forbidden(f"a {scope} token may not {method} {api_path}")
        return viewer

    def grant(self, viewer: Viewer, method: str, api_path: str) -> Grant:
        """What let ``viewer`` make ``method api_path``, for a stream to ask again later."""
        token_hash = None if viewer.scope is None else hash_token(viewer.cookie)
        return Grant(self.tokens, token_hash, viewer.scope, method, api_path)

    async def scope_of(self, token: str) -> Scope | None:
        """The scope of a token typed into the login form, or None if it is not valid here
        (unknown, or bound to a concurrency key)."""
        access = (await self.tokens.known()).get(hash_token(token.strip()))
        return None if access is None or access.concurrency_key is not None else access.scope

    async def is_open(self) -> bool:
        await self.tokens.known()
        return not self.tokens.closed


def check_origin(request: Request) -> None:
    """A browser's form from a page of another site is refused, whatever it carries."""
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request.headers.get("host", "")):
        raise Forbidden("cross-origin requests may not change state")


def check_csrf(request: Request, viewer: Viewer, sent: str | None) -> None:
    """A state change must come from this origin and carry the session's CSRF token."""
    check_origin(request)
    sent = sent or request.headers.get(CSRF_HEADER)
    if viewer.fresh or not sent or not hmac.compare_digest(sent, viewer.csrf):
        raise Forbidden("the form is stale or did not come from this dashboard: reload the page")


def set_session(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path=cookie_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=cookie_path(request), httponly=True, samesite="strict")


def cookie_path(request: Request) -> str:
    """The dashboard's own path (its mount point), so the cookie goes nowhere else."""
    return mount_point(request) + "/"


def mount_point(request: Request) -> str:
    """The path the dashboard is served under ("" at the root), from the ASGI ``root_path``."""
    return str(request.scope.get("root_path", "")).rstrip("/")
