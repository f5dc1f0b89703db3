"""The job model and its state machine: the one place that says which status may follow which.

Nothing here does I/O. Stores turn a :class:`Transition` into one guarded write
(``UPDATE ... WHERE status IN (<sources>) AND attempt = ?``) so that a caller who lost a race
changes nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING = "waiting"  # in a workflow, until the jobs it runs after are settled

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
PENDING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED})  # a worker may take it once due
UNSTARTED = PENDING | {JobStatus.WAITING}  # no run has begun: a cancel ends it at once


class Transition(StrEnum):
    """Every way a job's status can change. ``TRANSITIONS`` gives each its sources and target."""

    CLAIM = "claim"  # a worker takes a due job
    COMPLETE = "complete"  # the run returned
    FAIL = "fail"  # the run raised and no attempts are left (or the task said never retry)
    RETRY_LATER = "retry_later"  # the run raised; try again after a backoff
    CANCEL = "cancel"  # a waiting job cancelled at once
    ABORT = "abort"  # a running job whose run stopped because someone asked to cancel it
    RELEASE = "release"  # graceful shutdown hands an unfinished run back, the attempt not counted
    # (an "interrupted" run; after FREE_INTERRUPTIONS of them, each one counts)
    RESCUE = "rescue"  # the lease expired: back to the queue
    RESCUE_FAIL = "rescue_fail"  # the lease expired and no attempts are left: "worker lost"
    RETRY = "retry"  # a user asks to run a failed or cancelled job again (a workflow job
    # whose parents are not all settled waits for them: it goes back to ``waiting``)
    # Workflows. The store applies these in the same write, by the triggers of
    # store/sql/*/013_workflows.sql, with these statuses.
    PROMOTE = "promote"  # the last of its parents settled: due now (or scheduled, if ahead)
    BLOCK = "block"  # a parent failed or was cancelled, and it does not run on parent failure
    RESTORE = "restore"  # the parent that blocked it is retried: it waits for it again
    # No job is due while a parent is unsettled: one that would become due in the same write
    # (a user's retry, a release, a rescue, a retry later) waits instead, and so does a due job
    # whose parent a user retried.
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Edge:
    sources: frozenset[JobStatus]
    target: JobStatus


_RUNNING = frozenset({JobStatus.PROCESSING})

TRANSITIONS: dict[Transition, Edge] = {
    Transition.CLAIM: Edge(PENDING, JobStatus.PROCESSING),
    Transition.COMPLETE: Edge(_RUNNING, JobStatus.COMPLETED),
    Transition.FAIL: Edge(_RUNNING, JobStatus.FAILED),
    Transition.RETRY_LATER: Edge(_RUNNING, JobStatus.SCHEDULED),
    Transition.CANCEL: Edge(UNSTARTED, JobStatus.CANCELLED),
    Transition.ABORT: Edge(_RUNNING, JobStatus.CANCELLED),
    Transition.RELEASE: Edge(_RUNNING, JobStatus.QUEUED),
    Transition.RESCUE: Edge(_RUNNING, JobStatus.SCHEDULED),
    Transition.RESCUE_FAIL: Edge(_RUNNING, JobStatus.FAILED),
    Transition.RETRY: Edge(frozenset({JobStatus.FAILED, JobStatus.CANCELLED}), JobStatus.QUEUED),
    Transition.PROMOTE: Edge(frozenset({JobStatus.WAITING}), JobStatus.QUEUED),
    Transition.BLOCK: Edge(frozenset({JobStatus.WAITING}), JobStatus.CANCELLED),
    Transition.RESTORE: Edge(frozenset({JobStatus.CANCELLED}), JobStatus.WAITING),
    Transition.HOLD: Edge(
        frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.PROCESSING, JobStatus.FAILED}),
        JobStatus.WAITING,
    ),
}


# Interrupted runs a job may have without using an attempt: a job that every deploy interrupts
# (it runs longer than the grace period) still ends, after this many more.
FREE_INTERRUPTIONS = 10


def can_apply(transition: Transition, status: JobStatus) -> bool:
    return status in TRANSITIONS[transition].sources


@dataclass(frozen=True, slots=True)
class Job:
    """One request to run a task, as stored. Times are seconds since the epoch (UTC)."""

    id: str
    task: str
    queue: str
    payload: Any
    status: JobStatus
    priority: int
    attempt: int  # how many times it was claimed; also the fencing token of every worker write
    max_attempts: int
    uncounted: int  # claims that use up no attempt: handed back at shutdown, or before a user retry
    timeout: float | None
    run_at: float
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    worker_id: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    progress: Any = None
    # A submit with a unique key creates nothing while another job holds the key: one that is
    # waiting or running (``unique_until`` None), or one submitted less than a window ago
    # (until ``unique_until``).
    unique_key: str | None = None
    unique_until: float | None = None
    trace_context: str | None = None  # the W3C traceparent of its submit (tracing.py)
    # Workflows (model/workflows.py): its workflow and key there, the ids of the jobs it runs
    # after, how many of those are not settled yet, how many jobs run after it, whether it runs
    # when a parent failed, and the parent whose failure cancelled it. ``after`` is None in a
    # claim or a change of a job with more than the row keeps (store/rows.py KEPT_PARENTS): a
    # fan-in's child would otherwise be rewritten whole as each parent settles; ``parents``
    # counts them always.
    workflow_id: str | None = None
    workflow_key: str | None = None
    after: Any = None
    parents: int = 0
    waiting_on: int = 0
    dependents: int = 0
    on_parent_failure: str | None = None
    blocked_by: str | None = None
    interrupted: int = 0  # runs a graceful stop handed back (RELEASE)
    concurrency_key: str | None = None  # its tenant: fair claiming and per-key limits

    @property
    def attempts_used(self) -> int:
        return self.attempt - self.uncounted

    @property
    def attempts_left(self) -> bool:
        return self.attempts_used < self.max_attempts


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a submit stores: the fields the caller chooses. The store adds the rest."""

    id: str
    task: str
    queue: str
    payload: Any
    priority: int
    max_attempts: int
    timeout: float | None
    run_at: float
    unique_key: str | None = None
    unique_until: float | None = None  # None: the key is held while the job waits or runs
    trace_context: str | None = None  # the W3C traceparent of its submit (tracing.py)
    concurrency_key: str | None = None  # its tenant (docs/tenants.md)

    def status_at(self, now: float) -> JobStatus:
        return JobStatus.SCHEDULED if self.run_at > now else JobStatus.QUEUED


@dataclass(frozen=True, slots=True)
class DebouncedJob(NewJob):
    """A submit with ``debounce``: if a waiting job holds its (live) unique key, that job takes
    this one's payload and start (``run_at``), the start capped at the holder's submit plus
    ``max_wait``. Not a column: only such submits carry it, to the store's debounce step."""

    max_wait: float | None = None

    @classmethod
    def of(cls, job: NewJob, max_wait: float | None) -> DebouncedJob:
        return cls(
            *(job.id, job.task, job.queue, job.payload, job.priority, job.max_attempts),
            *(job.timeout, job.run_at, job.unique_key, job.unique_until, job.trace_context),
            job.concurrency_key,
            max_wait,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed run ended: a transition the store writes only if ``attempt`` still holds."""

    job_id: str
    attempt: int
    transition: Transition
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    run_at: float | None = None  # when a retried or rescued job becomes due
    only_if_lease_expired_by: float | None = None  # the rescuer's guard against a fresh heartbeat
    # The run's worker: its outcome lands only while the job is that worker's. The attempt
    # alone is not enough after a database crash that lost a relaxed claim: the job is then
    # claimed again under the same attempt by another worker. None: the rescuer's, a user's.
    worker_id: str | None = None
    wakes: bool = False  # a workflow parent's: its write may make jobs due, so tell the workers


def new_job_id() -> str:
    """A UUID version 7 (RFC 9562): a millisecond timestamp, then 74 random bits.

    Ids that grow with time land at the end of the id index instead of at random places in
    it, which keeps inserts into a large jobs table cheap; they also sort by submit time.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
