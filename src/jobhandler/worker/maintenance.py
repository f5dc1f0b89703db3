"""Maintenance: rescue, prune and periodic jobs, run by one elected worker at a time.

Every worker campaigns for the "maintenance" role (worker/leader.py); only the leader runs
these services, so a fleet of workers does not scan for expired leases and old jobs N times
over. Each service is also safe should two run at once (a leader that stalled past its lease):
rescue outcomes are fenced, and prune deletes only what is past retention either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from jobhandler.app import App
from jobhandler.model.errors import JobHandlerError, UnknownTask
from jobhandler.model.jobs import Job, Outcome, Transition
from jobhandler.model.retry import RetryPolicy
from jobhandler.settings import Settings
from jobhandler.worker.leader import Elector
from jobhandler.worker.schedules import Scheduler

log = logging.getLogger("jobhandler.rescuer")

WORKER_LOST = "worker lost"
ROLE = "maintenance"

Action = Callable[[], Awaitable[object]]


async def every(interval: float, action: Action, *, kick: asyncio.Event | None = None) -> None:
    """Run ``action`` every ``interval`` seconds (at once when ``kick`` is set) until cancelled.

    A failure of the store is logged and tried again next time; a bug is not caught here.
    """
    while True:
        if kick is None:
            await asyncio.sleep(interval)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kick.wait(), interval)
            kick.clear()
        try:
            await action()
        except JobHandlerError as exc:
            logging.getLogger("jobhandler.worker").warning(
                "%s failed: %s", getattr(action, "__qualname__", "service"), exc
            )


class Maintenance:
    """The leader-only services of one worker, and its campaign to be the leader."""

    def __init__(self, app: App, settings: Settings, holder: str) -> None:
        self._kicks = [asyncio.Event(), asyncio.Event()]
        self._schedule_kick = asyncio.Event()  # a new leader fires what is due at once
        self.scheduler = Scheduler(app, settings)
        self.elector = Elector(
            app.service.store,
            ROLE,
            holder,
            ttl=settings.lease,
            clock=app.clock,
            # Ask as often as the rescuer looks: a dead leader's orphans wait no longer
            # for a new leader than they would for the rescuer's next look.
            campaign_every=settings.rescue_interval,
            on_elected=self._kick_all,
        )
        self._services: list[tuple[float, Action]] = [
            (settings.rescue_interval, Rescuer(app, settings).run_once),
            (settings.prune_interval, Pruner(app, settings).run_once),
        ]

    async def run(self) -> None:
        """Campaign, and serve while leading, until cancelled; ``resign()`` afterwards."""
        loops = [asyncio.create_task(self.elector.run())]
        loops.append(asyncio.create_task(self.scheduler.run(self.elector, self._schedule_kick)))
        for (interval, action), kick in zip(self._services, self._kicks, strict=True):
            loops.append(asyncio.create_task(every(interval, self._if_leading(action), kick=kick)))
        try:
            await asyncio.gather(*loops)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def resign(self) -> None:
        await self.elector.resign()

    def _kick_all(self) -> None:
        """A new leader rescues at once: the old one may have died with jobs to rescue."""
        self._schedule_kick.set()
        for kick in self._kicks:
            kick.set()

    def _if_leading(self, action: Action) -> Action:
        async def run() -> None:
            if self.elector.leading:
                await action()

        run.__qualname__ = getattr(action, "__qualname__", "service")
        return run


class Rescuer:
    """Returns jobs whose lease expired to the queue, or fails them when no attempts are left.

    Safe when many workers run it at once: each outcome is fenced by the attempt and guarded
    by "the lease is still expired", so a late heartbeat or another rescuer wins cleanly.
    """

    def __init__(self, app: App, settings: Settings, batch: int = 500) -> None:
        self.app = app
        self.settings = settings
        self.batch = batch

    async def run_once(self) -> None:
        store, now = self.app.service.store, self.app.clock()
        await self._forget_dead_workers(now)
        rescued = await self.rescue(await store.expired_jobs(now, self.batch), now)
        if rescued:
            log.warning("rescued %d jobs whose worker stopped heartbeating", rescued)

    async def rescue(self, expired: list[Job], now: float) -> int:
        """Requeue (or fail) these jobs, each only if its lease is still expired."""
        if not expired:
            return 0
        outcomes = [self._outcome(job, now) for job in expired]
        applied = await self.app.service.store.finish_jobs(outcomes, now)
        for job, outcome, ok in zip(expired, outcomes, applied, strict=True):
            if ok:
                self.app.events.rescued(job, outcome, now)
        if any(applied):
            self.app.service.signals.finished()
        return sum(applied)

    async def _forget_dead_workers(self, now: float) -> None:
        """Drop registry entries of workers that stopped heartbeating (killed, not stopped)."""
        silent_since = now - 3 * max(self.settings.lease, self.settings.heartbeat_interval)
        for worker in await self.app.service.store.list_workers():
            if worker.last_seen_at < silent_since:
                log.warning(
                    "forgetting worker %s: no heartbeat since %.0f", worker.id, worker.last_seen_at
                )
                await self.app.service.store.deregister_worker(worker.id)

    def _outcome(self, job: Job, now: float) -> Outcome:
        if job.cancel_requested:
            transition, error, when = Transition.ABORT, "cancelled", None
        else:
            when = self._policy(job.task).decide(job, now)
            transition = Transition.RESCUE_FAIL if when is None else Transition.RESCUE
            error = WORKER_LOST
        return Outcome(
            job.id,
            job.attempt,
            transition,
            error=error,
            run_at=when,
            only_if_lease_expired_by=now,
            wakes=job.dependents > 0,
        )

    def _policy(self, task: str) -> RetryPolicy:
        try:
            return self.app.tasks.get(task).options.retry
        except UnknownTask:
            return RetryPolicy()


class Pruner:
    """Deletes finished jobs past their retention, in bounded batches so no write runs long."""

    def __init__(self, app: App, settings: Settings, batch: int = 1000) -> None:
        self.app = app
        self.settings = settings
        self.batch = batch

    async def run_once(self) -> int:
        store, settings = self.app.service.store, self.settings
        # Tasks with a result_ttl of their own: their completed jobs go by it, not keep_completed.
        own = {t.name: t.options.result_ttl for t in self.app.tasks if t.options.result_ttl}
        total = await self._drain(
            lambda: store.prune(
                self.app.clock(),
                settings.keep_completed,
                settings.keep_failed,
                self.batch,
                sorted(own),
            )
        )
        for task, ttl in sorted(own.items()):
            total += await self._drain(functools.partial(self._task_batch, task, ttl))
        if total:
            log.info("pruned %d finished jobs past their retention", total)
        # A workflow goes with the last of its jobs (kept as long as a completed job is).
        await store.prune_workflows(self.app.clock() - settings.keep_completed)
        await self._prune_keys()
        return total

    async def _task_batch(self, task: str, ttl: float) -> int:
        store = self.app.service.store
        return await store.prune_task_results(task, self.app.clock() - ttl, self.batch)

    async def _drain(self, batch: Callable[[], Awaitable[int]]) -> int:
        """Call ``batch`` (one bounded delete) until it deletes less than a full batch."""
        total = 0
        while True:
            deleted = await batch()
            total += deleted
            if deleted < self.batch:
                return total

    async def _prune_keys(self) -> None:
        """Expired unique-key windows, Idempotency-Keys past their retention, and per-key rate
        buckets idle long enough to be full again (a full bucket is the same as none)."""
        before = self.app.clock() - self.settings.keep_idempotency_keys
        while (
            await self.app.service.store.prune_keys(self.app.clock(), before, self.batch)
            >= self.batch
        ):
            pass
