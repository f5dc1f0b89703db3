"""Attempt history: every run of a job.

A job's row shows its last run; migration 009's trigger keeps each earlier run in
``job_attempts`` when the transition that overwrites it happens (the next claim, a user's
retry or cancel), in that transition's transaction, and deletes the history with the job. So
the history of a job is its kept runs, then the last run as its row shows it (unless a user
retry kept that one already), which costs a job that runs once no write at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jobhandler.model.errors import JobNotFound
from jobhandler.model.records import Attempt
from jobhandler.store.dialect import Step
from jobhandler.store.resource import Resource

RUNNING = "processing"
# A run's outcome is the status it left the job in; "queued" only follows a run a graceful stop
# handed back (a user's retry keeps the run before it as it ended), shown as what it was.
OUTCOMES = {"queued": "interrupted"}


class Attempts(Resource):
    """A job's runs."""

    async def job_attempts(self, job_id: str) -> list[Attempt]:
        params = {"id": job_id}
        job, kept = await self.dialect.run(
            [Step(self.queries["get_job"], params), Step(self.queries["job_attempts"], params)],
            False,
        )
        if not job.rows:
            raise JobNotFound(job_id)
        found = [_kept(row) for row in kept.rows]
        last = _last_run(job.rows[0])
        if last is not None and all(a.attempt != last.attempt for a in found):
            found.append(last)
        return _retries_marked(found)


def _retries_marked(runs: list[Attempt]) -> list[Attempt]:
    """A run that ended its job (failed, cancelled, completed) and yet has a next run was
    retried by a user: that next run is marked."""
    ended = {"failed", "cancelled", "completed"}
    return [
        dataclasses.replace(run, after_user_retry=True)
        if i and runs[i - 1].outcome in ended
        else run
        for i, run in enumerate(runs)
    ]


def _kept(row: Any) -> Attempt:
    return Attempt(
        row["attempt"],
        row["worker_id"],
        row["started_at"],
        row["finished_at"],
        OUTCOMES.get(row["outcome"], row["outcome"]),
        row["error"],
        row["traceback"],
    )


def _last_run(job: Any) -> Attempt | None:
    """The run the job's row shows: in progress, or ended (a run that ended in a retry has no
    finished_at, as the job is not finished: it ended when the row was last written)."""
    if job["attempt"] == 0:
        return None
    if job["status"] == RUNNING:
        return Attempt(job["attempt"], job["worker_id"], job["started_at"], None, None, None, None)
    return Attempt(
        job["attempt"],
        job["worker_id"],
        job["started_at"],
        job["finished_at"] if job["finished_at"] is not None else job["updated_at"],
        OUTCOMES.get(job["status"], job["status"]),
        job["error"],
        job["traceback"],
    )
