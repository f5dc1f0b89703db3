"""Workflows: jobs that run after other jobs. Pure: the request, its checks, the graph's order
and what a workflow shows; nothing here does I/O.

A workflow is jobs with edges between them, stored as data: each job names the jobs it runs
after (``after``); until they are settled it is ``waiting``, with a count of unsettled parents
that each parent's own finishing write lowers (store/sql/*/013_workflows.sql). A parent that
fails for good, or is cancelled, cancels its dependents unless they run on parent failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobhandler.model.errors import InvalidJob, JobHandlerError
from jobhandler.model.jobs import TERMINAL, JobStatus, NewJob
from jobhandler.model.options import SubmitRequest
from jobhandler.model.validation import text_error

MAX_WORKFLOW_JOBS = 20_000  # jobs in one workflow
MAX_PARENTS = 10_000  # jobs one job may run after
KEY_MAX_LENGTH = 200

OnParentFailure = Literal["cancel", "run"]


class WorkflowStatus(StrEnum):
    RUNNING = "running"  # some job has not finished
    COMPLETED = "completed"  # every job completed
    FAILED = "failed"  # every job finished, and some did not complete
    CANCELLED = "cancelled"  # someone cancelled the workflow


class InvalidWorkflow(InvalidJob):
    """The graph was refused (a cycle, an unknown or repeated key); nothing was stored (422)."""


class WorkflowKeyHeld(JobHandlerError):
    """A job of the workflow has a unique key that a waiting or running job holds (HTTP 409);
    nothing was stored. ``holders``: each held key and the job that holds it. Declared here,
    raised by the store: the HTTP layer answers it without importing the store."""

    def __init__(self, holders: dict[str, str]) -> None:
        named = ", ".join(f"{key!r} (job {job})" for key, job in sorted(holders.items())[:10])
        super().__init__(f"unique keys held by other jobs: {named}; nothing was stored")
        self.holders = holders


WorkflowKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        json_schema_extra={"pattern": "^[^\\u0000]*$"},
        description="the job's name within its workflow",
    ),
]


class WorkflowJobRequest(SubmitRequest):
    """One job of a workflow: a submit's fields, its key, and the keys it runs after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: WorkflowKey
    after: list[WorkflowKey] = Field(
        default_factory=list, max_length=MAX_PARENTS, description="keys of jobs it runs after"
    )
    on_parent_failure: OnParentFailure = Field(
        default="cancel",
        description="cancel: a parent that failed or was cancelled cancels this job;"
        " run: it runs once its parents are settled, whatever became of them",
    )

    @model_validator(mode="after")
    def _no_debounce(self) -> WorkflowJobRequest:
        if self.debounce is not None or self.debounce_max_wait is not None:
            raise ValueError("debounce is not supported in a workflow: use unique_key alone")
        return self

    @field_validator("key", "after")
    @classmethod
    def _keys_are_text(cls, value: str | list[str]) -> str | list[str]:
        for key in [value] if isinstance(value, str) else value:
            if problem := text_error(key, ["key"]):
                raise ValueError(problem["msg"])
        return value


class WorkflowRequest(BaseModel):
    """``POST /workflows``: a name and the graph's jobs, stored all or none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=KEY_MAX_LENGTH, description="for people to read")
    jobs: list[WorkflowJobRequest] = Field(min_length=1, max_length=MAX_WORKFLOW_JOBS)

    @field_validator("name")
    @classmethod
    def _name_is_text(cls, value: str) -> str:
        if problem := text_error(value, ["name"]):
            raise ValueError(problem["msg"])
        return value


@dataclass(frozen=True, slots=True)
class WorkflowNode:
    """One job of a workflow to store: the job (checked already), its key, its parents' keys."""

    key: str
    job: NewJob
    after: tuple[str, ...] = ()
    on_parent_failure: OnParentFailure = "cancel"


@dataclass(frozen=True, slots=True)
class WorkflowMember:
    """One job of a workflow as the store writes it: the job, its key, the ids of its parents,
    how many jobs run after it, and whether it runs when a parent failed."""

    job: NewJob
    key: str
    created_at: float
    after: tuple[str, ...] = ()  # parent ids
    dependents: int = 0
    on_parent_failure: OnParentFailure | None = None  # None: "cancel"
    workflow_id: str | None = None  # a spawned child's: its parent's workflow


@dataclass(frozen=True, slots=True)
class NewWorkflow:
    """What a workflow submit stores: the workflow and its jobs, parents before children."""

    id: str
    name: str
    created_at: float
    jobs: list[WorkflowMember]


@dataclass(frozen=True, slots=True)
class ParentOutcome:
    """What a job of a workflow sees of one parent (``ctx.parent_results``)."""

    key: str
    id: str
    status: JobStatus
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowJob:
    """A job as its workflow shows it."""

    key: str
    id: str
    task: str
    status: JobStatus
    after: tuple[str, ...] = ()  # keys
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class WorkflowView:
    id: str
    name: str
    status: WorkflowStatus
    created_at: float
    cancelled_at: float | None = None
    jobs: list[WorkflowJob] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # jobs per status

    @property
    def finished(self) -> bool:
        return self.status is not WorkflowStatus.RUNNING


@dataclass(frozen=True, slots=True)
class WorkflowFilter:
    statuses: frozenset[WorkflowStatus] = frozenset()
    name: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    workflows: list[WorkflowView]  # without their jobs; with counts
    next_cursor: str | None


def workflow_status(counts: dict[str, int], cancelled: bool) -> WorkflowStatus:
    """A workflow's status from how many of its jobs are in each status."""
    if cancelled:
        return WorkflowStatus.CANCELLED
    if any(n and JobStatus(s) not in TERMINAL for s, n in counts.items()):
        return WorkflowStatus.RUNNING
    if all(s == JobStatus.COMPLETED for s, n in counts.items() if n):
        return WorkflowStatus.COMPLETED
    return WorkflowStatus.FAILED


def parents_first(nodes: list[WorkflowNode]) -> list[WorkflowNode]:
    """The nodes in an order where every job comes after its parents (Kahn's algorithm);
    InvalidWorkflow names a repeated key, an unknown key in ``after`` or a cycle."""
    index: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    for i, node in enumerate(nodes):
        if node.key in index:
            errors.append(_error(["jobs", i, "key"], f"key {node.key!r} is used twice", "dup"))
        index[node.key] = i
    for i, node in enumerate(nodes):
        for j, parent in enumerate(node.after):
            if parent not in index:
                where: list[str | int] = ["jobs", i, "after", j]
                errors.append(_error(where, f"no job has the key {parent!r}", "unknown_key"))
            elif parent == node.key:
                errors.append(_error(["jobs", i, "after", j], "a job cannot run after itself"))
    if errors:
        raise InvalidWorkflow(f"{len(errors)} errors in the workflow; nothing was stored", errors)
    return _sorted(nodes, index)


def _sorted(nodes: list[WorkflowNode], index: dict[str, int]) -> list[WorkflowNode]:
    waiting = [len(set(node.after)) for node in nodes]
    children: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for parent in set(node.after):
            children[index[parent]].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    order: list[int] = []
    while ready:
        i = ready.pop()
        order.append(i)
        for child in children[i]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) < len(nodes):
        stuck = sorted(nodes[i].key for i, n in enumerate(waiting) if n)
        message = f"the jobs {', '.join(map(repr, stuck[:10]))} depend on each other in a cycle"
        raise InvalidWorkflow(message, [_error(["jobs"], message, "cycle")])
    return [nodes[i] for i in order]


def _error(loc: list[str | int], message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": kind}
