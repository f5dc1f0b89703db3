"""Jobs as a user sees them: read one or a page, delete, prune, import, and the user's actions
on one job (cancel, retry), each a guarded UPDATE from the state machine (model/jobs.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jobhandler.model.errors import DuplicateJob, InvalidTransition, JobNotFound
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.records import JobFilter, Page
from jobhandler.store import rows as r
from jobhandler.store.dialect import Dialect, Duplicate, Step
from jobhandler.store.queries import Query
from jobhandler.store.resource import Resource
from jobhandler.store.uniqueness import held_keys_step, refuse_held, unraced

_REFUSALS = {
    "cancel_job": "job cannot be cancelled",
    "retry_job": "only a failed or cancelled job can be retried",
}


class Jobs(Resource):
    """Reads and user actions on jobs."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        # A page's candidates: seq and size, measured as this dialect measures text in bytes.
        self.sized = r.sized_columns(dialect.byte_length.format)

    async def import_jobs(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        values = [r.job_params(j, self.dialect.json) for j in jobs]
        insert = Step(self.queries["import_jobs"], values, many=True)
        try:
            await self.dialect.run(self.counted(insert, [j.id for j in jobs]), True)
        except Duplicate as exc:
            raise DuplicateJob("a job with one of these ids exists already") from exc

    async def get_job(self, job_id: str) -> Job | None:
        found = (await self.one("get_job", {"id": job_id})).rows
        return (await self.with_after([self.job(found[0])]))[0] if found else None

    async def list_jobs(
        self,
        where: JobFilter,
        limit: int,
        cursor: str | None,
        oldest_first: bool = False,
        max_bytes: int | None = None,
    ) -> Page:
        native = self.dialect.native
        if max_bytes is None:
            sql, params = r.list_query(where, limit, cursor, oldest_first)
            (done,) = await self.dialect.run([Step(Query("list", native(sql)), params)], False)
            page = r.page_of(done.rows, limit, self.job)
        else:
            sizes, params = r.list_query(where, limit, cursor, oldest_first, self.sized)
            budget = r.PageBudget(limit, max_bytes)
            found = await self.dialect.page_rows(native(sizes), params, budget)
            page = budget.page(found, self.job)
        return dataclasses.replace(page, jobs=await self.with_after(page.jobs))

    async def count_jobs(self, where: JobFilter, cap: int) -> int:
        sql, params = r.count_query(where, cap)
        query = Query("count_jobs", self.dialect.native(sql))
        (done,) = await self.dialect.run([Step(query, params)], False)
        return int(done.rows[0]["n"])

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        done = await self.one("job_statuses", {"ids": self.dialect.array(list(job_ids))})
        return {row["id"]: JobStatus(row["status"]) for row in done.rows}

    async def delete_job(self, job_id: str) -> bool:
        return (await self.one("delete_job", {"id": job_id}, write=True)).counts == [1]

    async def prune(
        self,
        now: float,
        completed_age: float,
        failed_age: float,
        limit: int,
        own_ttl: Sequence[str] = (),
    ) -> int:
        if limit <= 0:
            return 0
        # Bounded: one short write transaction per call, however much has piled up.
        params: dict[str, Any] = {
            "completed_before": now - completed_age,
            "failed_before": now - failed_age,
            "limit": limit,
        }
        if not own_ttl:  # the usual case keeps its plain statement
            return (await self.one("prune", params, write=True)).counts[0]
        params["own_ttl"] = self.dialect.array(list(own_ttl))
        return (await self.one("prune_except", params, write=True)).counts[0]

    async def prune_task_results(self, task: str, before: float, limit: int) -> int:
        if limit <= 0:
            return 0
        params = {"task": task, "before": before, "limit": limit}
        return (await self.one("prune_task_results", params, write=True)).counts[0]

    # -- user actions ----------------------------------------------------------------------

    async def request_cancel(self, job_id: str, now: float) -> Job:
        # A waiting job ends at once, a running one is flagged for its worker (which stops the
        # run and writes the cancelled outcome, fenced).
        return await self._act("cancel_job", job_id, now)

    async def retry_job(self, job_id: str, now: float) -> Job:
        # A user retry starts afresh: earlier claims stop counting against max_attempts. It is
        # refused while another job holds the job's unique key (uniqueness.py).
        held = held_keys_step(self.dialect, [job_id], now)
        return await unraced(lambda: self._act("retry_job", job_id, now, held))

    async def _act(self, name: str, job_id: str, now: float, held: Step | None = None) -> Job:
        """The guarded UPDATE, and in the same transaction the job's status, which says why
        when the UPDATE matched nothing (and ``held``: who holds the job's unique key)."""
        params = {"id": job_id, "now": now}
        steps = [Step(self.queries[name], params), Step(self.queries["job_status"], params)]
        if held is not None:
            steps.append(held)
        notify = self.queries.get(f"notify_{name.removesuffix('_job')}")
        if notify is not None:  # a dialect with a channel tells the workers
            steps.append(Step(notify, params))
        changed, status, *after = await self.dialect.run(steps, True)
        if changed.rows:
            return self.job(changed.rows[0])
        if not status.rows:
            raise JobNotFound(job_id)
        if held is not None:
            refuse_held(after[0])
        raise InvalidTransition(_REFUSALS[name], status.rows[0]["status"])
