"""The tokens a server knows, and whether it is closed: one cache per server.

The cache reads every token's hash, scope and key from the store at most once per
``TOKEN_CACHE_SECONDS``: a request costs no store query, and a new or revoked token takes
effect within that time. It also holds the server's one-way switch from open to closed (see
http/auth.py), so the API and the dashboard, which share it, open and close together.

A ``Grant`` is what let one request in; a stream keeps it and asks it again every few seconds
(``live.RECHECK_SECONDS``), so it ends once its token is revoked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobhandler.model.errors import StoreUnavailable
from jobhandler.model.tokens import Access
from jobhandler.model.tokens import Scope as TokenScope

log = logging.getLogger("jobhandler.http.auth")

TOKEN_CACHE_SECONDS = 1.0  # the longest a new or revoked token waits to take effect
TOUCH_INTERVAL = 60.0  # last_used_at is written at most this often, not on every request
GRANT_KEY = "jobhandler.grant"  # where a request's Grant waits in the ASGI scope


class TokenCache:
    """Every token's hash and what it may do, read from the store at most once per ``ttl``
    seconds, and whether the server is closed: once it is (a token was seen, or ``closed`` at
    the start), it stays so, and a request needs a token even when the store holds none."""

    def __init__(
        self,
        load: Callable[[], Awaitable[dict[str, Access]]],
        touch: Callable[[Sequence[str]], Awaitable[None]],
        ttl: float = TOKEN_CACHE_SECONDS,
        *,
        closed: bool = False,
    ) -> None:
        self._load, self._touch, self._ttl = load, touch, ttl
        self._closed = closed
        self._refusing_everyone = False  # closed with no token left: logged once per time
        self._known: dict[str, Access] = {}
        self._failure: str | None = None  # why the last read failed
        self._expires = float("-inf")
        self._lock = asyncio.Lock()
        self._touched: dict[str, float] = {}  # token hash → when its use was last written
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def closed(self) -> bool:
        """Whether a request needs a valid token, as of the last ``known()``."""
        return self._closed

    async def known(self) -> dict[str, Access]:
        """Token hash → what it may do; empty while the store holds no token."""
        if time.monotonic() >= self._expires:
            async with self._lock:  # a burst of requests at expiry makes one read, not one each
                if time.monotonic() >= self._expires:
                    await self._refresh()
        if self._failure is not None:
            raise StoreUnavailable(self._failure)  # a new one: a re-raised one keeps growing
        return self._known

    async def _refresh(self) -> None:
        try:
            self._known, self._failure = await self._load(), None
        except StoreUnavailable as exc:
            # Fail closed (503), and remember it for the ttl too: while the store is away,
            # requests must not queue on the lock behind one slow connect attempt each.
            self._known, self._failure = {}, str(exc)
        else:
            self._note_closing()
        self._expires = time.monotonic() + self._ttl

    def _note_closing(self) -> None:
        """Close for good on the first token seen; say so when a closed server has none left."""
        if self._known:
            self._closed, self._refusing_everyone = True, False
        elif self._closed and not self._refusing_everyone:
            self._refusing_everyone = True
            log.warning(
                "no API token is left in the store: this server now refuses every request but"
                " /healthz and /readyz until a token is created (`jobhandler token create`)"
            )

    async def allows(self, token_hash: str | None, method: str, path: str) -> bool:
        """Whether the holder of that token (None: no token) may still make this request."""
        try:
            known = await self.known()
        except StoreUnavailable:
            return False  # fail closed, as a new request would get a 503
        if token_hash is None:
            return not self._closed
        access = known.get(token_hash)
        return access is not None and access.allows(method, path)

    def used(self, token_hash: str) -> None:
        """Note a token's use in the store, in the background and at most once a minute."""
        now = time.monotonic()
        if now - self._touched.get(token_hash, float("-inf")) < TOUCH_INTERVAL:
            return
        self._touched[token_hash] = now  # only known tokens get here: the dict stays small
        write = asyncio.get_running_loop().create_task(self._record_use(token_hash))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _record_use(self, token_hash: str) -> None:
        try:
            await self._touch([token_hash])
        except Exception as exc:  # only bookkeeping (and maybe racing shutdown): never fatal
            log.warning("could not record token use: %s", exc)


@dataclass(frozen=True, slots=True)
class Grant:
    """What let a request in, kept so that a stream can ask again while it lasts."""

    tokens: TokenCache
    token_hash: str | None  # None: no token, on a server that was open then
    token_scope: TokenScope | None
    method: str
    path: str
    concurrency_key: str | None = None  # the tenant its token is bound to (None: none)

    async def holds(self) -> bool:
        """Whether the same request would still be let in (its token not revoked)."""
        return await self.tokens.allows(self.token_hash, self.method, self.path)


def grant_of(scope: Mapping[str, Any]) -> Grant | None:
    """The Grant the access checks left for this request (None where they did not run)."""
    grant = scope.get(GRANT_KEY)
    return grant if isinstance(grant, Grant) else None
