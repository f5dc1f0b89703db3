"""What every group of store operations (one resource: jobs, runs, schedules...) shares: the
dialect it runs on, and the few things each does with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jobhandler.model.jobs import Job, JobStatus
from jobhandler.store import rows as r
from jobhandler.store.dialect import Dialect, Done, Params, Step


class Resource:
    """The operations of one resource over a dialect. The core (core.py) holds one of each and
    hands every Store method to the resource that owns it."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.queries = dialect.queries

    async def one(self, name: str, params: Params, write: bool = False) -> Done:
        """Run the one named statement as its own unit of work."""
        (done,) = await self.dialect.run([Step(self.queries[name], params)], write)
        return done

    def job(self, row: Any) -> Job:
        return r.job_from_row(row, self.dialect.loads)

    def counted(
        self,
        insert: Step,
        ids: Sequence[str],
        skippable: Sequence[str] = (),
        made: Sequence[Job] | None = None,
    ) -> list[Step]:
        """``insert`` with what keeps ``queue_counts`` right after it, in its unit of work.

        PostgreSQL counts inserted jobs in a statement-level trigger and needs nothing here.
        SQLite has no such trigger, and a row-level one costs an UPSERT per job (about half a
        bulk submit's store time), so the jobs ``ids`` names are counted once, after the insert
        (``count_inserted``). ``skippable``: the ids the insert may skip on a held unique key;
        such an id may name a job already there (the same job submitted again), which the
        count would find too, so those are taken off first (``uncount_present``): a job the
        insert left alone is added back as it was taken off, and only new rows add up.
        ``made``: the jobs the insert writes, as written; with nothing skippable they are
        exactly the rows it adds, so they are counted from their values (``count_added``).
        """
        count = self.queries.get("count_inserted")
        if count is None or not ids:
            return [insert]
        if made is not None and not skippable and (added := _added(made)) is not None:
            query = self.queries["count_added"]  # one queue's row (the usual) as a single step
            step = Step(query, added[0]) if len(added) == 1 else Step(query, added, many=True)
            return [insert, step]
        before = []
        array = self.dialect.array
        if skippable:  # each id once: the queries join on them
            uncount = self.queries["uncount_present"]
            before.append(Step(uncount, {"ids": array(list(dict.fromkeys(skippable)))}))
        return [*before, insert, Step(count, {"ids": array(list(dict.fromkeys(ids)))})]

    async def parent_lists(self, job_ids: list[str]) -> dict[str, list[str]]:
        """The parents of the jobs ``job_ids`` names, from their edges: for those whose rows
        keep too many to list them (``Job.after`` None while ``parents`` counts some)."""
        if not job_ids:
            return {}
        found: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
        done = await self.one("parent_ids", {"ids": self.dialect.array(job_ids)})
        for row in done.rows:
            found[row["child_id"]].append(row["parent_id"])
        return found

    async def with_after(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` with every parent listed in ``after``, as a user reads one."""
        lists = await self.parent_lists([j.id for j in jobs if j.parents and j.after is None])
        if not lists:
            return jobs
        return [dataclasses.replace(j, after=lists[j.id]) if j.id in lists else j for j in jobs]


# The statuses a job may be inserted in, as count_added's parameters.
_ADDED = {
    JobStatus.QUEUED: "queued",
    JobStatus.SCHEDULED: "scheduled",
    JobStatus.WAITING: "waiting",
}


def _added(jobs: Sequence[Job]) -> list[Params] | None:
    """``count_added``'s rows: per queue, how many of ``jobs`` are in each status a new job may
    have; None if one is in another (those are counted by id)."""
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs:
        column = _ADDED.get(job.status)
        if column is None:
            return None
        row = rows.get(job.queue)
        if row is None:
            row = rows[job.queue] = {"queue": job.queue, "queued": 0, "scheduled": 0, "waiting": 0}
        row[column] += 1
    return [*rows.values()]
