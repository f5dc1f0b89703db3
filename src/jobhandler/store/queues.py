"""Flow control in the store: pauses and limits of queues and tasks, and the claim's unit of work
that honours them (the statements are in sql/<dialect>/claim.sql and sql/queues.sql).

Limits are counted in the store, over every worker of every host: the claim reads them and what
they still allow in the same transaction as it takes jobs. A dialect's claim is a few
statements run as one unit (one round trip): ``claim_lock`` (PostgreSQL: serialise the claims
that can take limited jobs), ``claim_jobs`` (the statement that takes jobs while no keyed job
is due, as before concurrency keys: it stands aside when one is) and ``claim_spend`` (SQLite:
spend the rate buckets; PostgreSQL does that inside the claim statements). Whether a keyed job
is due in those queues now: PostgreSQL's claim_lock answers, SQLite's claim_jobs in each row.
While one is, the unit also holds ``claim_keyed`` (which takes them, round-robin between keys,
with the unkeyed jobs as one more turn) and on SQLite ``claim_key_spend`` and ``claim_cursor``
(spend the keys' buckets, move the round-robin on) and ``keyed_due`` (SQLite: the answer). Each
checks in its own transaction which of them is to take jobs, so the choice made from what the
last claim found only saves the unkeyed drain the fair statements' cost: when keyed jobs come,
the claim that finds claim_jobs standing aside runs again at once, with the keyed statements (a
second round trip, that once; and on SQLite when an unkeyed claim took nothing, as it cannot
tell then).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from jobhandler.model.rates import parse_rate
from jobhandler.model.records import FlowLimit
from jobhandler.store.dialect import Dialect, Params, Step
from jobhandler.store.resource import Resource

CLAIM_STEPS = (
    "claim_lock",
    "claim_jobs",
    "claim_keyed",
    "claim_spend",
    "claim_key_spend",
    "claim_cursor",
    "keyed_due",
)
KEYED_STEPS = frozenset({"claim_keyed", "claim_key_spend", "claim_cursor", "keyed_due"})
TAKING = frozenset({"claim_jobs", "claim_keyed"})


class Flow(Resource):
    """Pauses and limits of queues and tasks, and the claim that honours them."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        # Whether the last claim of these queues found a keyed job due (unknown: assume so).
        self._keyed_due: dict[tuple[str, ...], bool] = {}
        self._last_claim_at = -math.inf

    def _own_instant(self, params: Params) -> Params:
        """The claim at an instant none of this store's claims had: SQLite's follow-up
        statements find what a claim took by its worker and start time, and a coarse or
        stepped-back clock could give two claims the same (a step of one float is enough)."""
        now = max(params["now"], math.nextafter(self._last_claim_at, math.inf))
        self._last_claim_at = now
        return params if now == params["now"] else {**params, "now": now}

    async def claim(self, params: Params) -> list[Any]:
        """Run the dialect's claim statements in one transaction; the rows it took."""
        queues = tuple(params["queues"])
        keyed = self._keyed_due.get(queues, True)
        rows, due = await self._claim(self._own_instant(params), keyed)
        if not keyed and due is not False and len(rows) < params["limit"]:
            # Keyed jobs came since the last claim (claim_jobs stood aside for them), or may
            # have (SQLite's claim_jobs, taking nothing, cannot say): again, with claim_keyed.
            rest = {**params, "limit": params["limit"] - len(rows)}
            more, due = await self._claim(self._own_instant(rest), True)
            rows += more
        self._keyed_due[queues] = bool(due)
        return rows

    async def _claim(self, params: Params, keyed: bool) -> tuple[list[Any], bool | None]:
        """The rows taken, and whether a keyed job is due (None: not known)."""
        names = [n for n in CLAIM_STEPS if n in self.queries and (keyed or n not in KEYED_STEPS)]
        done = await self.dialect.run([Step(self.queries[n], params) for n in names], True)
        rows = [row for n, d in zip(names, done, strict=True) if n in TAKING for row in d.rows]
        for asked in ("keyed_due", "claim_lock"):
            if asked in names:
                return rows, bool(done[names.index(asked)].rows[0]["due"])
        taken = done[names.index("claim_jobs")].rows  # SQLite's says, in each row it took
        return rows, bool(taken[0]["keyed_due"]) if taken else None

    async def flow_limits(self) -> list[FlowLimit]:
        return [_limit(row) for row in (await self.one("flow_limits", {})).rows]

    async def set_paused(self, queue: str, paused: bool, now: float) -> FlowLimit:
        done = await self.one("set_paused", {"name": queue, "paused": paused, "now": now}, True)
        return _limit(done.rows[0])

    async def set_limits(self, limit: FlowLimit, now: float, fields: frozenset[str]) -> FlowLimit:
        params = {
            **_values(limit),
            "now": now,
            "set_concurrency": "concurrency" in fields,
            "set_rate": "rate_limit" in fields,
            "set_key_concurrency": "key_concurrency" in fields,
            "set_key_rate": "key_rate_limit" in fields,
        }
        return _limit((await self.one("set_limits", params, True)).rows[0])

    async def declare_limits(self, limits: Sequence[FlowLimit], now: float) -> None:
        if limits:
            values = [{**_values(limit), "now": now} for limit in limits]
            await self.dialect.run([Step(self.queries["declare_limits"], values, many=True)], True)


def _values(limit: FlowLimit) -> dict[str, Any]:
    return {
        "scope": limit.scope,
        "name": limit.name,
        "concurrency": limit.concurrency,
        **_rate("", limit.rate_limit),
        "key_concurrency": limit.key_concurrency,
        **_rate("key_", limit.key_rate_limit),
    }


def _rate(prefix: str, text: str | None) -> dict[str, Any]:
    rate = None if text is None else parse_rate(text)
    return {
        f"{prefix}rate_limit": None if rate is None else rate.text,
        f"{prefix}rate_count": None if rate is None else rate.count,
        f"{prefix}rate_period": None if rate is None else rate.period,
    }


def _limit(row: Any) -> FlowLimit:
    return FlowLimit(
        scope=row["scope"],
        name=row["name"],
        paused=bool(row["paused"]),
        concurrency=row["concurrency"],
        rate_limit=row["rate_limit"],
        key_concurrency=row["key_concurrency"],
        key_rate_limit=row["key_rate_limit"],
    )
