"""Workflows: a graph's jobs and edges stored in one transaction, a running job's spawned
children, and the reads a workflow page and a dependent job need.

The fan-in itself is not here: a parent's finishing write settles its edges through the
triggers ``jobs_settle`` and ``jobs_reopen`` (sql/*/013_workflows.sql), whichever path ends it
(a worker's outcome, a cancel, the rescuer, a bulk action), in that write's own transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jobhandler.model.errors import DuplicateJob
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.records import JobRef, decode_cursor, encode_cursor
from jobhandler.model.workflows import (
    NewWorkflow,
    ParentOutcome,
    WorkflowFilter,
    WorkflowJob,
    WorkflowKeyHeld,
    WorkflowMember,
    WorkflowPage,
    WorkflowStatus,
    WorkflowView,
    workflow_status,
)
from jobhandler.store import rows as r
from jobhandler.store.dialect import Duplicate, Step
from jobhandler.store.resource import Resource

_FIRST = 2**63 - 1  # a cursor before every workflow
__all__ = ["WorkflowKeyHeld", "Workflows"]  # the error is the model's, raised here


class Workflows(Resource):
    async def insert_workflow(self, new: NewWorkflow) -> list[Job]:
        """Store the workflow, its jobs and its edges, all or none; the jobs as stored."""
        created = [_created(m, new.id) for m in new.jobs]
        json = self.dialect.json
        values = [_member_params(m, job, json) for m, job in zip(new.jobs, created, strict=True)]
        edges = [
            {"parent_id": parent, "child_id": m.job.id} for m in new.jobs for parent in m.after
        ]
        head = {"id": new.id, "name": new.name, "created_at": new.created_at}
        steps = [Step(self.queries["insert_workflow"], head)]
        insert = Step(self.queries["insert_workflow_job"], values, many=True)
        steps += self.counted(insert, [j.id for j in created])
        if edges:
            steps.append(Step(self.queries["insert_edge"], edges, many=True))
        steps += self._notify()
        try:
            await self.dialect.run(steps, True)
        except Duplicate:
            holders = await self._holders(created)
            if holders:
                raise WorkflowKeyHeld(holders) from None
            raise DuplicateJob("a job or workflow with one of these ids exists already") from None
        return created

    def _notify(self) -> list[Step]:
        # PostgreSQL tells listening workers at commit (SQLite: the inserts' :wakes flag).
        notify = self.queries.get("notify_submit")
        return [] if notify is None else [Step(notify, {})]

    async def _holders(self, jobs: list[Job]) -> dict[str, str]:
        keys = sorted({j.unique_key for j in jobs if j.unique_key is not None})
        if not keys:
            return {}
        done = await self.one("live_holders", {"keys": self.dialect.array(keys)})
        return {row["unique_key"]: row["id"] for row in done.rows}

    async def spawn(self, parent: JobRef, member: WorkflowMember, now: float) -> Job | None:
        """Store ``member`` as a child of the running job ``parent``: the jobs that run after
        the parent run after it too. None: the parent's run no longer holds the job."""
        job = _created(member, member.workflow_id)
        fence = {"parent": parent.id, "attempt": parent.attempt}
        values = {**_member_params(member, job, self.dialect.json), **fence}
        ids = {"id": job.id, "parent": parent.id}
        insert = Step(self.queries["spawn_job"], values)
        steps = [
            *self.counted(insert, [job.id]),
            Step(self.queries["spawn_edges"], ids),
            Step(self.queries["spawn_waits"], {"id": job.id}),
            Step(self.queries["spawn_dependents"], {"id": job.id}),
            *self._notify(),
            Step(self.queries["get_job"], {"id": job.id}),
        ]
        try:
            done = await self.dialect.run(steps, True)
        except Duplicate:  # spawned by an earlier run of the parent: that child stands
            found = (await self.one("get_job", {"id": job.id})).rows
            return self.job(found[0]) if found else None
        rows = done[-1].rows
        return self.job(rows[0]) if rows else None

    async def get_workflow(self, workflow_id: str) -> WorkflowView | None:
        head, members = await self.dialect.run(
            [
                Step(self.queries["get_workflow"], {"id": workflow_id}),
                Step(self.queries["workflow_jobs"], {"id": workflow_id}),
            ],
            False,
        )
        if not head.rows:
            return None
        keys = {row["id"]: row["workflow_key"] or row["id"] for row in members.rows}
        loads = self.dialect.loads
        many = [row["id"] for row in members.rows if row["parents"] and row["after"] is None]
        lists = await self.parent_lists(many)
        jobs = [_workflow_job(row, keys, lists.get(row["id"]), loads) for row in members.rows]
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.status.value] = counts.get(job.status.value, 0) + 1
        return _view(head.rows[0], counts, jobs)

    async def page_workflows(
        self, where: WorkflowFilter, limit: int, cursor: str | None
    ) -> WorkflowPage:
        wanted = {s.value: s in where.statuses for s in WorkflowStatus}
        params: dict[str, Any] = {
            "before": _FIRST if cursor is None else decode_cursor(cursor),
            "name": where.name,
            "any_status": not where.statuses,
            **wanted,
            "limit": limit + 1,
        }
        (page,) = await self.dialect.run([Step(self.queries["page_workflows"], params)], False)
        rows = page.rows[:limit]
        counts: dict[str, dict[str, int]] = {row["id"]: {} for row in rows}
        if rows:
            span = {"low": rows[-1]["seq"], "high": rows[0]["seq"]}
            for row in (await self.one("workflow_counts", span)).rows:
                if row["workflow_id"] in counts:
                    counts[row["workflow_id"]][row["status"]] = int(row["n"])
        views = [_view(row, counts[row["id"]], []) for row in rows]
        more = len(page.rows) > limit
        return WorkflowPage(views, encode_cursor(rows[-1]["seq"]) if more else None)

    async def cancel_workflow(self, workflow_id: str, now: float) -> bool:
        """Mark the workflow cancelled (its jobs are cancelled by the caller, as a bulk
        cancel); False if it was already."""
        done = await self.one("cancel_workflow", {"id": workflow_id, "now": now}, write=True)
        return done.counts == [1]

    async def parent_outcomes(self, job_id: str) -> list[ParentOutcome]:
        """The parents of a workflow job, as they stand."""
        rows = (await self.one("parent_results", {"id": job_id})).rows
        loads = self.dialect.loads
        return [
            ParentOutcome(
                key=row["workflow_key"] or row["id"],
                id=row["id"],
                status=JobStatus(row["status"]),
                result=None if row["result"] is None else loads(row["result"]),
                error=row["error"],
            )
            for row in rows
        ]

    async def import_workflows(self, workflows: Sequence[WorkflowView]) -> None:
        values = [
            {"id": w.id, "name": w.name, "created_at": w.created_at, "cancelled_at": w.cancelled_at}
            for w in workflows
        ]
        await self.dialect.run([Step(self.queries["import_workflow"], values, many=True)], True)

    async def rebuild_edges(self) -> None:
        """The edges from the copied jobs' ``after`` (each listing all of its parents, as a
        read gives them); then a long list is dropped from its row, as a submit drops it."""
        steps = [Step(self.queries["rebuild_edges"], {}), Step(self.queries["trim_after"], {})]
        await self.dialect.run(steps, True)

    async def prune_workflows(self, before: float) -> int:
        done = await self.one("prune_workflows", {"before": before}, write=True)
        return sum(done.counts)


def _created(member: WorkflowMember, workflow_id: str | None) -> Job:
    job = r.created_job(member.job, member.created_at)
    status = JobStatus.WAITING if member.after else job.status
    return dataclasses.replace(
        job,
        status=status,
        workflow_id=workflow_id,
        workflow_key=member.key,
        after=list(member.after) or None,  # all of them, as a read shows them
        parents=len(member.after),
        waiting_on=len(member.after),
        dependents=member.dependents,
        on_parent_failure=member.on_parent_failure,
    )


def _member_params(member: WorkflowMember, job: Job, json: Any) -> dict[str, Any]:
    values = r.new_job_params(job, json)
    values.update(
        workflow_id=job.workflow_id,
        workflow_key=job.workflow_key,
        # A long list lives in job_deps alone: see KEPT_PARENTS.
        after=json(job.after) if job.after and job.parents <= r.KEPT_PARENTS else None,
        parents=job.parents,
        waiting_on=job.waiting_on,
        dependents=job.dependents,
        on_parent_failure=job.on_parent_failure,
    )
    return values


def _workflow_job(
    row: Any, keys: dict[str, str], parents: list[str] | None, loads: Any
) -> WorkflowJob:
    after = parents or (loads(row["after"]) if row["after"] is not None else [])
    return WorkflowJob(
        key=row["workflow_key"] or row["id"],
        id=row["id"],
        task=row["task"],
        status=JobStatus(row["status"]),
        after=tuple(keys.get(parent, parent) for parent in after),
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


def _view(row: Any, counts: dict[str, int], jobs: list[WorkflowJob]) -> WorkflowView:
    cancelled = row["cancelled_at"] is not None
    return WorkflowView(
        id=row["id"],
        name=row["name"],
        status=workflow_status(counts, cancelled),
        created_at=row["created_at"],
        cancelled_at=row["cancelled_at"],
        jobs=jobs,
        counts=counts,
    )
