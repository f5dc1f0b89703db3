"""Queue flow control, the service side: the limits declared in code written to the store,
pause and resume, run-time changes, and what ``GET /queues`` shows. The limits themselves are
enforced by the claim, in the store (store/queues.py, sql/<dialect>/claim.sql), over every
worker of every host.

Code is the default: ``app.queue(...)`` and ``@app.task(concurrency=..., rate_limit=...)``
declare limits (model/limits.py), which a worker writes to the store when it starts. A change
at run time (``PATCH /queues/{name}``, the CLI, ``service.flow.update``) holds until it is
changed again or the code's declaration changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.limits import LIMIT_FIELDS, DeclaredLimits, checked_limit
from jobhandler.model.records import FlowLimit, QueueStats
from jobhandler.model.tasks import TaskRegistry
from jobhandler.settings import Settings
from jobhandler.store import Store

log = logging.getLogger("jobhandler.flow")

SERVED_CACHE_SECONDS = 2.0  # how long a submit trusts the last read of the worker registry


class QueueNotFound(JobHandlerError, LookupError):
    """An action named a queue nothing knows (see ``Flow.known``); nothing was written."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no queue named {name!r}: no task, job, worker or limit names it")
        self.name = name


class Flow:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], float],
        tasks: TaskRegistry,
        declared: DeclaredLimits,
    ) -> None:
        self._store, self._settings, self._clock = store, settings, clock
        self._tasks, self._declared = tasks, declared
        self._served: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
        self._warned: set[str] = set()

    async def write_declarations(self, queues: Iterable[str], tasks: Iterable[str]) -> None:
        """What the code declares of these queues and tasks, written by a worker as it starts."""
        declared = self._declared.declarations(queues, tasks)
        await self._store.declare_limits(declared, self._clock())

    # -- at run time -----------------------------------------------------------------------

    async def pause(self, queue: str) -> QueueStats:
        """Start none of the queue's jobs (running ones finish), until resumed; kept in the
        store, so it holds over restarts and every worker. Raises QueueNotFound for a queue
        no task, job, worker or stored limit names (nothing is written)."""
        return await self._set_paused(queue, True)

    async def resume(self, queue: str) -> QueueStats:
        return await self._set_paused(queue, False)

    async def _set_paused(self, queue: str, paused: bool) -> QueueStats:
        checked_limit("queue", queue, {})
        await self.known(queue)
        await self._store.set_paused(queue, paused, self._clock())
        log.info("queue %s %s", queue, "paused" if paused else "resumed")
        return await self.queue(queue)

    async def update(self, queue: str, **values: int | str | None) -> QueueStats:
        """Set ``concurrency``, ``rate_limit``, ``key_concurrency``, ``key_rate_limit`` at run
        time; None removes a limit.
        Raises InvalidLimit (an InvalidJob) for a bad value, QueueNotFound as ``pause``."""
        fields = frozenset(values) & LIMIT_FIELDS
        if unknown := set(values) - LIMIT_FIELDS:
            raise TypeError(f"unknown queue settings: {', '.join(sorted(unknown))}")
        limit = checked_limit("queue", queue, values)
        await self.known(queue)
        await self._store.set_limits(limit, self._clock(), fields)
        log.info("queue %s limits set: %s", queue, {k: values[k] for k in sorted(fields)})
        return await self.queue(queue)

    async def known(self, queue: str) -> None:
        """QueueNotFound unless a task of the app or the code names ``queue``, or it is one
        ``GET /queues`` shows (it has jobs, a live worker serves it, or the store keeps its
        limits or pause): an action on a made-up name must not create the queue it names."""
        if any(task.options.queue == queue for task in self._tasks):
            return
        if self._declared.names("queue", queue):
            return
        if all(stats.queue != queue for stats in await self.queue_stats()):
            raise QueueNotFound(queue)

    # -- what GET /queues shows ------------------------------------------------------------

    async def queue_stats(self) -> list[QueueStats]:
        """Every queue with jobs, limits or a live worker: counts, pause, limits, served."""
        stats = {s.queue: s for s in await self._store.queue_stats()}
        limits = {f.name: f for f in await self._store.flow_limits() if f.scope == "queue"}
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
                    key_concurrency=limit.key_concurrency,
                    key_rate_limit=limit.key_rate_limit,
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
        since = self._clock() - 3 * self._settings.heartbeat_interval
        workers = await self._store.list_workers()
        served = frozenset(q for w in workers if w.last_seen_at >= since for q in w.queues)
        self._served = (time.monotonic(), served)
        return served
