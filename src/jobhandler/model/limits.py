"""Flow limits declared in code: ``app.queue(...)`` and ``@app.task(concurrency=...,
rate_limit=...)``, checked at once. A worker writes them to the store as it starts; the store's
claim enforces them over every worker (store/queues.py); service/flow.py changes them at run
time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from jobhandler.model.errors import InvalidJob
from jobhandler.model.rates import check_concurrency, parse_rate
from jobhandler.model.records import FlowLimit
from jobhandler.model.validation import error, name_error

Scope = Literal["queue", "task"]
LIMIT_FIELDS = frozenset({"concurrency", "rate_limit"})


class InvalidLimit(InvalidJob):
    """A queue name, concurrency or rate limit that cannot be used; nothing was written."""


def checked_limit(scope: Scope, name: str, values: dict[str, Any]) -> FlowLimit:
    """A limit from edge values (None: no limit); InvalidLimit names each bad field."""
    problems = []
    if (bad := name_error(name, [scope])) is not None:
        problems.append(bad)
    concurrency, rate = values.get("concurrency"), values.get("rate_limit")
    try:
        concurrency = None if concurrency is None else check_concurrency(concurrency)
    except ValueError as exc:
        problems.append(error(["concurrency"], str(exc), "invalid_concurrency"))
    try:
        rate = None if rate is None else parse_rate(rate).text
    except (ValueError, TypeError) as exc:
        problems.append(error(["rate_limit"], str(exc), "invalid_rate_limit"))
    if problems:
        raise InvalidLimit("; ".join(p["msg"] for p in problems), list(problems))
    return FlowLimit(scope, name, concurrency=concurrency, rate_limit=rate)


class DeclaredLimits:
    """The limits an app's code declares, by queue or task."""

    def __init__(self) -> None:
        self._declared: dict[tuple[Scope, str], FlowLimit] = {}

    def declare(
        self, scope: Scope, name: str, concurrency: int | None, rate_limit: str | None
    ) -> None:
        """Record a limit declared in code; InvalidLimit for a bad one, at once."""
        limit = checked_limit(scope, name, {"concurrency": concurrency, "rate_limit": rate_limit})
        self._declared[(scope, name)] = limit

    def names(self, scope: Scope, name: str) -> bool:
        """Whether the code declares a limit for this queue or task."""
        return (scope, name) in self._declared

    def declarations(self, queues: Iterable[str], tasks: Iterable[str]) -> list[FlowLimit]:
        """What the code says of these queues and tasks: a limit left out is no limit (so a
        limit removed from the code goes from the store too)."""
        named: list[tuple[Scope, str]] = [("queue", q) for q in sorted(set(queues))]
        named += [("task", t) for t in sorted(set(tasks))]
        named += sorted(k for k in self._declared if k not in set(named))
        return [self._declared.get(k, FlowLimit(*k)) for k in named]
