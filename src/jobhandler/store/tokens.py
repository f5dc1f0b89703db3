"""API tokens in the store: only their hashes, scopes and keys are kept (model/tokens.py)."""

from __future__ import annotations

from collections.abc import Sequence

from jobhandler.model.tokens import Access, DuplicateToken, TokenInfo, as_scope
from jobhandler.store.dialect import Duplicate, Step
from jobhandler.store.resource import Resource


class Tokens(Resource):
    """Adding, listing, revoking and touching tokens."""

    async def add_token(self, token: TokenInfo) -> None:
        params = {
            "name": token.name,
            "scope": token.scope,
            "hash": token.hash,
            "created_at": token.created_at,
            "concurrency_key": token.concurrency_key,
        }
        try:
            await self.one("add_token", params, write=True)
        except Duplicate:
            raise DuplicateToken(f"a token named {token.name!r} exists already") from None

    async def list_tokens(self) -> list[TokenInfo]:
        return [
            TokenInfo(
                t["name"],
                as_scope(t["scope"]),
                t["hash"],
                t["created_at"],
                t["last_used_at"],
                t["concurrency_key"],
            )
            for t in (await self.one("list_tokens", {})).rows
        ]

    async def revoke_token(self, name: str) -> bool:
        return (await self.one("revoke_token", {"name": name}, write=True)).counts == [1]

    async def token_access(self) -> dict[str, Access]:
        done = await self.one("token_access", {})
        return {t["hash"]: Access(as_scope(t["scope"]), t["concurrency_key"]) for t in done.rows}

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        if hashes:
            values = [{"now": now, "hash": h} for h in hashes]
            await self.dialect.run([Step(self.queries["touch_token"], values, many=True)], True)
