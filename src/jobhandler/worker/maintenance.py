"""Small services every worker runs beside its claim loop."""

from __future__ import annotations

import logging

from jobhandler.app import App
from jobhandler.errors import UnknownTask
from jobhandler.jobs import Job, Outcome, Transition
from jobhandler.retry import RetryPolicy
from jobhandler.settings import Settings

log = logging.getLogger("jobhandler.rescuer")

WORKER_LOST = "worker lost"


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
        store, now = self.app.store, self.app.clock()
        await self._forget_dead_workers(now)
        expired = await store.expired_jobs(now, self.batch)
        if not expired:
            return
        outcomes = [self._outcome(job, now) for job in expired]
        applied = await store.finish_jobs(outcomes, now)
        rescued = sum(applied)
        if rescued:
            log.warning("rescued %d jobs whose worker stopped heartbeating", rescued)
            self.app.notify_finished()

    async def _forget_dead_workers(self, now: float) -> None:
        """Drop registry entries of workers that stopped heartbeating (killed, not stopped)."""
        silent_since = now - 3 * max(self.settings.lease, self.settings.heartbeat_interval)
        for worker in await self.app.store.list_workers():
            if worker.last_seen_at < silent_since:
                log.warning(
                    "forgetting worker %s: no heartbeat since %.0f", worker.id, worker.last_seen_at
                )
                await self.app.store.deregister_worker(worker.id)

    def _outcome(self, job: Job, now: float) -> Outcome:
        if job.cancel_requested:
            transition, error, when = Transition.ABORT, "cancelled", None
        else:
            when = self._policy(job.task).decide(job, now)
            transition = Transition.RESCUE_FAIL if when is None else Transition.RESCUE
            error = WORKER_LOST
        return Outcome(
            job.id, job.attempt, transition, error=error, run_at=when, only_if_lease_expired_by=now
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
        store, settings = self.app.store, self.settings
        total = 0
        while True:
            deleted = await store.prune(
                self.app.clock(), settings.keep_completed, settings.keep_failed, self.batch
            )
            total += deleted
            if deleted < self.batch:
                break
        if total:
            log.info("pruned %d finished jobs past their retention", total)
        return total
