"""API tokens: made, listed, revoked, and read by the access check (http/auth.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jobhandler.model.tokens import Access, TokenInfo, new_token
from jobhandler.store import Store


class Tokens:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store, self._clock = store, clock

    async def create(
        self, scope: str, name: str | None = None, concurrency_key: str | None = None
    ) -> tuple[TokenInfo, str]:
        """Make and store a token; the token itself is returned here and nowhere else.
        ``concurrency_key``: the tenant it is bound to (docs/tenants.md), checked as a job's.

        Raises ValueError for a bad scope, name or key (nothing stored),
        tokens.DuplicateToken for a taken name.
        """
        info, token = new_token(scope, name, self._clock(), concurrency_key)
        await self._store.add_token(info)
        return info, token

    async def all(self) -> list[TokenInfo]:
        return await self._store.list_tokens()

    async def revoke(self, name: str) -> bool:
        return await self._store.revoke_token(name)

    async def known(self) -> dict[str, Access]:
        """Every token's hash and what it may do (empty: the store holds no token)."""
        return await self._store.token_access()

    async def touch(self, hashes: Sequence[str]) -> None:
        """Note the tokens' use (``last_used_at``)."""
        await self._store.touch_tokens(hashes, self._clock())
