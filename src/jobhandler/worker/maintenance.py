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
        expired = await store.expired_jobs(now, self.batch)
        if not expired:
            return
        outcomes = [self._outcome(job, now) for job in expired]
        applied = await store.finish_jobs(outcomes, now)
        rescued = sum(applied)
        if rescued:
            log.warning("rescued %d jobs whose worker stopped heartbeating", rescued)
            self.app.notify_finished()

    def _outcome(self, job: Job, now: float) -> Outcome:
        if job.cancel_requested:
            transition, error, when = Transition.CANCEL, "cancelled", None
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
