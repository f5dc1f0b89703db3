"""Workflows, for every frontend: submit a graph (checked whole before anything is written),
read one or a page, cancel one, and a running job's spawned children and parents' results.

The graph is stored as data (store/workflows.py): each job with the ids of its parents and a
count of those unsettled, each edge a row. From then on the store alone moves it: a parent's
finishing write lowers its children's counts and makes the last one due, in one transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from jobhandler.model.errors import InvalidJob, JobHandlerError
from jobhandler.model.jobs import Job, NewJob, new_job_id
from jobhandler.model.records import JobFilter, JobRef
from jobhandler.model.workflows import (
    MAX_WORKFLOW_JOBS,
    NewWorkflow,
    OnParentFailure,
    ParentOutcome,
    WorkflowFilter,
    WorkflowJob,
    WorkflowMember,
    WorkflowNode,
    WorkflowPage,
    WorkflowRequest,
    WorkflowStatus,
    WorkflowView,
    parents_first,
)
from jobhandler.observe.events import Events
from jobhandler.service.jobs import Jobs
from jobhandler.service.signals import Signals
from jobhandler.service.submits import Submits, checked_jobs
from jobhandler.service.tenancy import CALLER_KEY
from jobhandler.store import Store


class WorkflowNotFound(JobHandlerError):
    def __init__(self, workflow_id: str) -> None:
        super().__init__("workflow not found")
        self.workflow_id = workflow_id


class Workflows:
    def __init__(
        self,
        store: Store,
        submits: Submits,
        jobs: Jobs,
        clock: Callable[[], float],
        events: Events,
        signals: Signals,
    ) -> None:
        self._store, self._submits, self._jobs, self._clock = store, submits, jobs, clock
        self._events, self._signals = events, signals

    async def submit(self, request: WorkflowRequest) -> WorkflowView:
        """``POST /workflows``: every job checked against its task, the graph against itself
        (InvalidJob naming each problem), then all stored in one transaction."""
        now = self._clock()
        check = _checked(self._submits)
        new = checked_jobs(check, request.jobs, now, MAX_WORKFLOW_JOBS, "workflow")
        nodes = [
            WorkflowNode(item.key, job, tuple(item.after), item.on_parent_failure)
            for item, job in zip(request.jobs, new, strict=True)
        ]
        return await self.submit_nodes(request.name, nodes, now)

    async def submit_nodes(
        self, name: str, nodes: Sequence[WorkflowNode], now: float | None = None
    ) -> WorkflowView:
        """Store a graph of checked jobs (the Python builder's way in). Raises InvalidJob."""
        now = self._clock() if now is None else now
        ordered = parents_first(list(nodes))
        ids = {node.key: node.job.id for node in ordered}
        children: dict[str, int] = {}
        for node in ordered:
            for parent in set(node.after):
                children[parent] = children.get(parent, 0) + 1
        members = [
            WorkflowMember(
                job=node.job,
                key=node.key,
                created_at=now,
                after=tuple(ids[p] for p in dict.fromkeys(node.after)),
                dependents=children.get(node.key, 0),
                on_parent_failure=_stored(node.on_parent_failure),
            )
            for node in ordered
        ]
        workflow = NewWorkflow(new_job_id(), name, now, members)
        jobs = await self._store.insert_workflow(workflow)
        self._events.submitted(jobs)
        self._signals.submitted()
        keys = {job.id: job.workflow_key or job.id for job in jobs}
        shown = [_shown(job, keys) for job in jobs]
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.status.value] = counts.get(job.status.value, 0) + 1
        return WorkflowView(workflow.id, name, WorkflowStatus.RUNNING, now, None, shown, counts)

    async def get(self, workflow_id: str) -> WorkflowView:
        found = await self._store.get_workflow(workflow_id)
        if found is None or not await self._callers(found):
            raise WorkflowNotFound(workflow_id)
        return found

    async def _callers(self, view: WorkflowView) -> bool:
        """Whether the caller may see the workflow: a caller bound to a concurrency key
        (tenancy.py) only one whose every job is of its key."""
        bound = CALLER_KEY.get()
        if bound is None:
            return True
        where = JobFilter(workflow_id=view.id, concurrency_key=bound)
        return await self._store.count_jobs(where, len(view.jobs)) == len(view.jobs)

    async def page(
        self, where: WorkflowFilter | None = None, limit: int = 50, cursor: str | None = None
    ) -> WorkflowPage:
        """Newest first, each with its counts of jobs per status (not the jobs)."""
        return await self._store.page_workflows(where or WorkflowFilter(), limit, cursor)

    async def cancel(self, workflow_id: str) -> WorkflowView:
        """Cancel what has not finished: waiting and due jobs at once, running ones by their
        workers (the usual cancel). Cancelling a cancelled workflow changes nothing."""
        await self.get(workflow_id)  # WorkflowNotFound
        await self._store.cancel_workflow(workflow_id, self._clock())
        await self._jobs.bulk("cancel", JobFilter(workflow_id=workflow_id))
        return await self.get(workflow_id)

    async def spawn(self, parent: Job, new: NewJob, key: str | None = None) -> Job:
        """A child of the running job ``parent``: the jobs that run after ``parent`` run after
        it too. Its id is derived from the parent's and ``key``, so a re-run of the parent
        that spawns the same key finds the first run's child instead of making another. A
        child that names no concurrency key takes its parent's: a tenant's work stays its own
        (its limits, its turn, and what its bound token sees)."""
        key = key or new.id
        if new.concurrency_key is None and parent.concurrency_key is not None:
            new = dataclasses.replace(new, concurrency_key=parent.concurrency_key)
        child_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"jobhandler:{parent.id}/{key}"))
        member = WorkflowMember(
            job=_with_id(new, child_id),
            key=key,
            created_at=self._clock(),
            workflow_id=parent.workflow_id,
        )
        child = await self._store.spawn(JobRef(parent.id, parent.attempt), member, self._clock())
        if child is None:
            raise JobHandlerError(f"job {parent.id} is no longer running here: nothing spawned")
        self._events.submitted([child])
        self._signals.submitted()
        return child

    async def parent_outcomes(self, job: Job) -> list[ParentOutcome]:
        if not job.parents:
            return []
        return await self._store.parent_outcomes(job.id)


def _checked(submits: Submits) -> Callable[[Any, float], NewJob]:
    def check(item: Any, now: float) -> NewJob:
        if item.unique_for is not None:
            message = "unique_for is not supported in a workflow: use unique_key alone"
            raise InvalidJob(message, [{"loc": ["unique_for"], "msg": message, "type": "value"}])
        return submits.new_job(item, now)

    return check


def _stored(policy: OnParentFailure) -> OnParentFailure | None:
    return None if policy == "cancel" else policy


def _with_id(new: NewJob, job_id: str) -> NewJob:
    return dataclasses.replace(new, id=job_id)


def _shown(job: Job, keys: dict[str, str]) -> WorkflowJob:
    return WorkflowJob(
        key=job.workflow_key or job.id,
        id=job.id,
        task=job.task,
        status=job.status,
        after=tuple(keys.get(p, p) for p in job.after or ()),
        created_at=job.created_at,
    )
