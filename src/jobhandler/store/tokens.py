"""API tokens in the store: only their hashes and scopes are kept (model/tokens.py)."""

from __future__ import annotations

from collections.abc import Sequence

from jobhandler.model.tokens import DuplicateToken, Scope, TokenInfo, as_scope
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
        }
        try:
            await self.one("add_token", params, write=True)
        except Duplicate:
            raise DuplicateToken(f"a token named {token.name!r} exists already") from None

    async def list_tokens(self) -> list[TokenInfo]:
        return [
            TokenInfo(
                t["name"], as_scope(t["scope"]), t["hash"], t["created_at"], t["last_used_at"]
            )
            for t in (await self.one("list_tokens", {})).rows
        ]

    async def revoke_token(self, name: str) -> bool:
        return (await self.one("revoke_token", {"name": name}, write=True)).counts == [1]

    async def token_scopes(self) -> dict[str, Scope]:
        done = await self.one("token_scopes", {})
        return {t["hash"]: as_scope(t["scope"]) for t in done.rows}

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        if hashes:
            values = [{"now": now, "hash": h} for h in hashes]
            await self.dialect.run([Step(self.queries["touch_token"], values, many=True)], True)
