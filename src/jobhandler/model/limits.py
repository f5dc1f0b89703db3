"""Flow limits declared in code: ``app.queue(...)`` and ``@app.task(concurrency=...,
rate_limit=..., key_concurrency=..., key_rate_limit=...)``, checked at once. A worker writes
them to the store as it starts; the store's claim enforces them over every worker
(store/queues.py); service/flow.py changes them at run time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from jobhandler.model.errors import InvalidJob
from jobhandler.model.rates import check_concurrency, parse_rate
from jobhandler.model.records import FlowLimit
from jobhandler.model.validation import error, name_error

Scope = Literal["queue", "task"]
LIMIT_FIELDS = frozenset({"concurrency", "rate_limit", "key_concurrency", "key_rate_limit"})


class InvalidLimit(InvalidJob):
    """A queue name, concurrency or rate limit that cannot be used; nothing was written."""


def checked_limit(scope: Scope, name: str, values: dict[str, Any]) -> FlowLimit:
    """A limit from edge values (None: no limit); InvalidLimit names each bad field."""
    problems = []
    if (bad := name_error(name, [scope])) is not None:
        problems.append(bad)
    checked: dict[str, Any] = {}
    for field in sorted(LIMIT_FIELDS):
        value = values.get(field)
        try:
            if field.endswith("concurrency"):
                checked[field] = None if value is None else check_concurrency(value)
            else:
                checked[field] = None if value is None else parse_rate(value).text
        except (ValueError, TypeError) as exc:
            kind = "concurrency" if field.endswith("concurrency") else "rate_limit"
            problems.append(error([field], str(exc), f"invalid_{kind}"))
    if problems:
        raise InvalidLimit("; ".join(p["msg"] for p in problems), list(problems))
    return FlowLimit(scope, name, **checked)


class DeclaredLimits:
    """The limits an app's code declares, by queue or task."""

    def __init__(self) -> None:
        self._declared: dict[tuple[Scope, str], FlowLimit] = {}

    def declare(self, scope: Scope, name: str, **values: int | str | None) -> None:
        """Record a limit declared in code (LIMIT_FIELDS); InvalidLimit for a bad one, at once."""
        self._declared[(scope, name)] = checked_limit(scope, name, values)

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
