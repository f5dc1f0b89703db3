"""Queue flow control, the service side: limits declared in code, pause and resume, run-time
changes, and what ``GET /queues`` shows. The limits themselves are enforced by the claim, in
the store (store/queues.py, sql/<dialect>/claim.sql), over every worker of every host.

Code is the default: ``app.queue(...)`` and ``@app.task(concurrency=..., rate_limit=...)``
declare limits, which a worker writes to the store when it starts. A change at run time
(``PATCH /queues/{name}``, the CLI, ``update_queue``) holds until it is changed again or the
code's declaration changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jobhandler.model.errors import InvalidJob, JobHandlerError
from jobhandler.model.rates import check_concurrency, parse_rate
from jobhandler.model.records import FlowLimit, QueueStats
from jobhandler.model.validation import error, name_error
from jobhandler.settings import Settings
from jobhandler.store import Store

if TYPE_CHECKING:
    from jobhandler.model.tasks import TaskRegistry

log = logging.getLogger("jobhandler.flow")

Scope = Literal["queue", "task"]
LIMIT_FIELDS = frozenset({"concurrency", "rate_limit"})
SERVED_CACHE_SECONDS = 2.0  # how long a submit trusts the last read of the worker registry


class InvalidLimit(InvalidJob):
    """A queue name, concurrency or rate limit that cannot be used; nothing was written."""


class QueueNotFound(JobHandlerError, LookupError):
    """An action named a queue nothing knows (see ``Flow.known``); nothing was written."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no queue named {name!r}: no task, job, worker or limit names it")
        self.name = name


class FlowOwner(Protocol):
    """What the service needs of its App (no import of App: it owns this service)."""

    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> Settings: ...

    clock: Callable[[], float]
    tasks: TaskRegistry


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


class Flow:
    def __init__(self, owner: FlowOwner) -> None:
        self._owner = owner
        self._declared: dict[tuple[Scope, str], FlowLimit] = {}
        self._served: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
        self._warned: set[str] = set()

    # -- declared in code ------------------------------------------------------------------

    def declare(
        self, scope: Scope, name: str, concurrency: int | None, rate_limit: str | None
    ) -> None:
        """Record a limit declared in code; InvalidLimit for a bad one, at once."""
        limit = checked_limit(scope, name, {"concurrency": concurrency, "rate_limit": rate_limit})
        self._declared[(scope, name)] = limit

    def declarations(self, queues: Iterable[str], tasks: Iterable[str]) -> list[FlowLimit]:
        """What the code says of these queues and tasks: a limit left out is no limit (so a
        limit removed from the code goes from the store too)."""
        named: list[tuple[Scope, str]] = [("queue", q) for q in sorted(set(queues))]
        named += [("task", t) for t in sorted(set(tasks))]
        named += sorted(k for k in self._declared if k not in set(named))
        return [self._declared.get(k, FlowLimit(*k)) for k in named]

    async def write_declarations(self, queues: Iterable[str], tasks: Iterable[str]) -> None:
        """Called by a worker as it starts."""
        owner = self._owner
        await owner.store.declare_limits(self.declarations(queues, tasks), owner.clock())

    # -- at run time -----------------------------------------------------------------------

    async def set_paused(self, queue: str, paused: bool) -> QueueStats:
        checked_limit("queue", queue, {})
        await self.known(queue)
        await self._owner.store.set_paused(queue, paused, self._owner.clock())
        log.info("queue %s %s", queue, "paused" if paused else "resumed")
        return await self.queue(queue)

    async def update(self, queue: str, values: dict[str, Any]) -> QueueStats:
        """Set the limits in ``values`` (concurrency, rate_limit; None removes one)."""
        fields = frozenset(values) & LIMIT_FIELDS
        if unknown := set(values) - LIMIT_FIELDS:
            raise TypeError(f"unknown queue settings: {', '.join(sorted(unknown))}")
        limit = checked_limit("queue", queue, values)
        await self.known(queue)
        await self._owner.store.set_limits(limit, self._owner.clock(), fields)
        log.info("queue %s limits set: %s", queue, {k: values[k] for k in sorted(fields)})
        return await self.queue(queue)

    async def known(self, queue: str) -> None:
        """QueueNotFound unless a task of the app or the code names ``queue``, or it is one
        ``GET /queues`` shows (it has jobs, a live worker serves it, or the store keeps its
        limits or pause): an action on a made-up name must not create the queue it names."""
        if any(task.options.queue == queue for task in self._owner.tasks):
            return
        if ("queue", queue) in self._declared:
            return
        if all(stats.queue != queue for stats in await self.queue_stats()):
            raise QueueNotFound(queue)

    # -- what GET /queues shows ------------------------------------------------------------

    async def queue_stats(self) -> list[QueueStats]:
        """Every queue with jobs, limits or a live worker: counts, pause, limits, served."""
        store = self._owner.store
        stats = {s.queue: s for s in await store.queue_stats()}
        limits = {f.name: f for f in await store.flow_limits() if f.scope == "queue"}
        served = await self._refresh_served()
        found = []
        for name in sorted(stats.keys() | limits.keys() | served):
            limit = limits.get(name, FlowLimit("queue", name))
            found.append(
                replace(
                    stats.get(name, QueueStats(name)),
                    paused=limit.paused,
                    concurrency=limit.concurrency,
                    rate_limit=limit.rate_limit,
                    served=name in served,
                )
            )
        return found

    async def queue(self, name: str) -> QueueStats:
        return next(q for q in await self.queue_stats() if q.queue == name)

    async def unserved(self, queues: Iterable[str]) -> list[str]:
        """Those of ``queues`` no live worker serves (by a read at most a few seconds old),
        each logged once per read: a job submitted there waits until a worker comes."""
        read_at, served = self._served
        fresh = time.monotonic() - read_at > SERVED_CACHE_SECONDS
        if fresh:
            served, self._warned = await self._refresh_served(), set()
        missing = sorted(set(queues) - served)
        for queue in missing:
            if queue not in self._warned:
                self._warned.add(queue)
                log.warning("jobs submitted to queue %s wait: no live worker serves it", queue)
        return missing

    async def _refresh_served(self) -> frozenset[str]:
        """The queues of the workers seen within three heartbeats."""
        owner = self._owner
        since = owner.clock() - 3 * owner.settings.heartbeat_interval
        workers = await owner.store.list_workers()
        served = frozenset(q for w in workers if w.last_seen_at >= since for q in w.queues)
        self._served = (time.monotonic(), served)
        return served


class QueueMethods:
    """The App's queue methods (a base of App, which sets ``flow``)."""

    flow: Flow

    def queue(
        self, name: str, *, concurrency: int | None = None, rate_limit: str | None = None
    ) -> None:
        """Declare a queue's limits, over all workers: at most ``concurrency`` of its jobs run
        at once, at most ``rate_limit`` ("100/s", "10/min", "5/h") start. A worker writes
        them to the store when it starts; a run-time change holds until the code changes."""
        self.flow.declare("queue", name, concurrency, rate_limit)

    async def pause_queue(self, name: str) -> QueueStats:
        """Start none of the queue's jobs (running ones finish), until resumed; kept in the
        store, so it holds over restarts and every worker. Raises QueueNotFound for a queue
        no task, job, worker or stored limit names (nothing is written)."""
        return await self.flow.set_paused(name, True)

    async def resume_queue(self, name: str) -> QueueStats:
        return await self.flow.set_paused(name, False)

    async def update_queue(self, name: str, **limits: int | str | None) -> QueueStats:
        """Set ``concurrency`` and/or ``rate_limit`` at run time; None removes a limit.
        Raises InvalidLimit (an InvalidJob) for a bad value, QueueNotFound as pause_queue."""
        return await self.flow.update(name, dict(limits))
