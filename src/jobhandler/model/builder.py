"""Workflows from Python: the typed builder (``app.workflow``) and the handle it returns
(Celery-style ``chain``, ``group`` and ``chord`` build on it: model/canvas.py). No I/O here: a
workflow is stored, read and waited for through its tasks' connection (``JobSink``:
app.Connection).

Results flow through the task context, not through arguments as in Celery: a job's payload is
its own, and it reads what its parents returned as ``ctx.parent_results[key]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from typing_extensions import Unpack

from jobhandler.model.errors import JobFailed, WaitTimeout
from jobhandler.model.handles import JobSource
from jobhandler.model.jobs import TERMINAL, JobStatus, NewJob
from jobhandler.model.options import EnqueueOptions, JobOptions, WorkflowOptions, job_options
from jobhandler.model.validation import text_error
from jobhandler.model.workflows import (
    KEY_MAX_LENGTH,
    InvalidWorkflow,
    OnParentFailure,
    WorkflowNode,
    WorkflowStatus,
    WorkflowView,
    parents_first,
)

T = TypeVar("T")
R = TypeVar("R")
P_contra = TypeVar("P_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)


class Task(Protocol[P_contra, R_co]):
    """A task taking a ``P_contra`` and returning an ``R_co``, as a workflow needs it
    (model/tasks.Task, which imports this module): ``enqueue_many``'s parameter and
    ``load_result`` are what let mypy check a node's payload and type its result."""

    @property
    def name(self) -> str: ...

    @property
    def jobs(self) -> Any: ...

    def enqueue_many(
        self, payloads: Sequence[P_contra], **options: Unpack[EnqueueOptions]
    ) -> Any: ...

    def dump_payload(self, value: Any) -> Any: ...

    def load_result(self, raw: Any) -> R_co: ...

    def new_job(self, payload: Any, now: float, options: JobOptions = ...) -> NewJob: ...


class WorkflowSink(JobSource, Protocol):
    """Where workflows go and are read back: the App's connected service (app.Connection)."""

    clock: Callable[[], float]

    async def submit_workflow(self, name: str, nodes: list[WorkflowNode]) -> WorkflowView: ...

    async def get_workflow(self, workflow_id: str) -> WorkflowView: ...

    async def cancel_workflow(self, workflow_id: str) -> WorkflowView: ...


@dataclass(frozen=True, eq=False)
class Node(Generic[R_co]):
    """One job of a workflow being built: what ``wf.add`` returns, to name in ``after=``."""

    # Covariant, so that a Node[str] passes where the context wants a Node[object]
    # (``print(await handle.result(node))``).
    key: str
    task: Task[Any, R_co]
    payload: Any  # checked, in its JSON form
    options: JobOptions
    after: tuple[str, ...]
    on_parent_failure: OnParentFailure


class Workflow:
    """A graph of jobs to submit as one: ``wf.add(...)`` each job, then ``await wf.enqueue()``.

    Payloads and options are checked as each job is added (InvalidPayload, InvalidOptions),
    the graph when it is (InvalidWorkflow); nothing is stored before ``enqueue``, and then all
    the jobs or none.
    """

    def __init__(self, sink: WorkflowSink, name: str) -> None:
        if problem := _name_problem(name, "name"):
            raise InvalidWorkflow(problem, [{"loc": ["name"], "msg": problem, "type": "value"}])
        self.name = name
        self._sink = sink
        self.nodes: dict[str, Node[Any]] = {}

    @overload
    def add(
        self,
        task: Task[None, R],
        payload: None = None,
        *,
        after: Iterable[Node[Any]] = (),
        on_parent_failure: OnParentFailure = "cancel",
        key: str | None = None,
        **options: Unpack[WorkflowOptions],
    ) -> Node[R]: ...
    @overload
    def add(
        self,
        task: Task[T, R],
        payload: T,
        *,
        after: Iterable[Node[Any]] = (),
        on_parent_failure: OnParentFailure = "cancel",
        key: str | None = None,
        **options: Unpack[WorkflowOptions],
    ) -> Node[R]: ...

    def add(
        self,
        task: Task[Any, Any],
        payload: Any = None,
        *,
        after: Iterable[Node[Any]] = (),
        on_parent_failure: OnParentFailure = "cancel",
        key: str | None = None,
        **options: Any,
    ) -> Node[Any]:
        """Add a job of ``task`` that runs once every node in ``after`` is settled.

        ``on_parent_failure``: "cancel" (a parent that failed for good or was cancelled cancels
        this job) or "run" (it runs anyway, and sees the failure in ``ctx.parent_results``).
        ``key`` names it in the workflow and in its children's ``parent_results``; by default
        the task's name, then ``name-2``, ``name-3``... ``options`` as ``enqueue``'s.
        """
        key = self._default_key(task.name) if key is None else key
        parents = list(after)
        self._check(key, parents, options, on_parent_failure)
        checked = job_options(options)
        node: Node[Any] = Node(
            key,
            task,
            task.dump_payload(payload),
            checked,
            tuple(dict.fromkeys(p.key for p in parents)),
            on_parent_failure,
        )
        self.nodes[key] = node
        return node

    def _check(
        self, key: str, parents: list[Node[Any]], options: dict[str, Any], policy: str
    ) -> None:
        errors: list[dict[str, Any]] = []
        if problem := _name_problem(key, "key"):
            errors.append({"loc": ["key"], "msg": problem, "type": "value"})
        elif key in self.nodes:
            errors.append({"loc": ["key"], "msg": f"key {key!r} is used twice", "type": "dup"})
        for i, parent in enumerate(parents):
            if not isinstance(parent, Node) or self.nodes.get(parent.key) is not parent:
                message = f"{parent!r} is not a node of this workflow"
                errors.append({"loc": ["after", i], "msg": message, "type": "unknown_key"})
        for name in ("unique_for", "debounce", "debounce_max_wait"):
            if name in options:
                message = f"{name} is not supported in a workflow: use unique_key alone"
                errors.append({"loc": [name], "msg": message, "type": "value"})
        if policy not in ("cancel", "run"):
            message = "on_parent_failure is 'cancel' or 'run'"
            errors.append({"loc": ["on_parent_failure"], "msg": message, "type": "value"})
        if errors:
            raise InvalidWorkflow(f"cannot add {key!r}: {errors[0]['msg']}", errors)

    def _default_key(self, name: str) -> str:
        key, n = name, 1
        while key in self.nodes:
            n += 1
            key = f"{name}-{n}"
        return key

    def to_nodes(self, now: float) -> list[WorkflowNode]:
        """The jobs to store, parents first; InvalidWorkflow for an empty graph."""
        if not self.nodes:
            message = "a workflow needs at least one job"
            raise InvalidWorkflow(message, [{"loc": ["jobs"], "msg": message, "type": "value"}])
        return parents_first(
            [
                WorkflowNode(
                    n.key, n.task.new_job(n.payload, now, n.options), n.after, n.on_parent_failure
                )
                for n in self.nodes.values()
            ]
        )

    async def enqueue(self) -> WorkflowHandle:
        """Store every job in one transaction; returns the workflow's handle."""
        view = await self._sink.submit_workflow(self.name, self.to_nodes(self._sink.clock()))
        return WorkflowHandle(self._sink, view)

    def enqueue_sync(self) -> WorkflowHandle:
        """``enqueue`` for code without an event loop."""
        return self._sink.run_sync(self.enqueue())


class WorkflowHandle:
    """A submitted workflow: its ``id``, its ``status`` as last read, each node's job id
    (``handle[node]`` or ``handle.jobs[key]``), and ways to wait for, re-read or cancel it."""

    def __init__(self, sink: WorkflowSink, view: WorkflowView) -> None:
        self._sink = sink
        self.view = view

    @property
    def id(self) -> str:
        return self.view.id

    @property
    def status(self) -> WorkflowStatus:
        return self.view.status

    @property
    def jobs(self) -> dict[str, str]:
        """Each job's key -> its id (spawned children too, once read by ``refresh``)."""
        return {job.key: job.id for job in self.view.jobs}

    def __getitem__(self, node: Node[Any] | str) -> str:
        return self.jobs[node if isinstance(node, str) else node.key]

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.view.name} {self.id} {self.status.value}>"

    async def refresh(self) -> WorkflowView:
        """The workflow as it stands now (also kept as ``view``)."""
        self.view = await self._sink.get_workflow(self.id)
        return self.view

    get = refresh

    async def wait(self, timeout: float = 60.0) -> WorkflowView:
        """The workflow once it is finished, or as it stands after ``timeout`` seconds.

        Waits on its unfinished jobs (last ones first) with the service's job waiting: each
        wakes when that job finishes, without polling.
        """
        deadline = time.monotonic() + timeout
        view = await self.refresh()
        while not view.finished and (remaining := deadline - time.monotonic()) > 0:
            await self._sink.wait_for_job(_a_last_unfinished(view), remaining)
            view = await self.refresh()
        return view

    async def result(self, node: Node[R], timeout: float = 60.0) -> R:
        """Wait for ``node``'s job and return its result as its task's return type (JobFailed,
        WaitTimeout as ``JobHandle.get_result``)."""
        job = await self._sink.wait_for_job(self[node], timeout)
        if job.status is JobStatus.COMPLETED:
            return node.task.load_result(job.result)
        if job.status.terminal:
            raise JobFailed(job.id, job.status.value, job.error)
        raise WaitTimeout(job.id, job.status.value, timeout)

    async def cancel(self) -> WorkflowView:
        """Cancel every job that has not finished (running ones get the usual cancel)."""
        self.view = await self._sink.cancel_workflow(self.id)
        return self.view

    def refresh_sync(self) -> WorkflowView:
        return self._sink.run_sync(self.refresh())

    def wait_sync(self, timeout: float = 60.0) -> WorkflowView:
        return self._sink.run_sync(self.wait(timeout))

    def result_sync(self, node: Node[R], timeout: float = 60.0) -> R:
        return self._sink.run_sync(self.result(node, timeout))

    def cancel_sync(self) -> WorkflowView:
        return self._sink.run_sync(self.cancel())


def _job(node: Node[Any], now: float) -> NewJob:
    return node.task.new_job(node.payload, now, node.options)


def _a_last_unfinished(view: WorkflowView) -> str:
    """An unfinished job no other job runs after if there is one (it finishes late), else any."""
    parents = {key for job in view.jobs for key in job.after}
    unfinished = [job for job in view.jobs if job.status not in TERMINAL]
    last = [job for job in unfinished if job.key not in parents]
    return (last or unfinished)[0].id


def _name_problem(value: str, what: str) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= KEY_MAX_LENGTH:
        return f"a workflow's {what} is text of 1 to {KEY_MAX_LENGTH} characters"
    problem = text_error(value, [what])
    return None if problem is None else str(problem["msg"])
