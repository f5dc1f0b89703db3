"""A Hypothesis state machine drives a real store (SQLite, then PostgreSQL) the way workers,
rescuers and users do.

Steps: submit (single jobs, and small workflows: random graphs of 2-5 jobs, each cancelled or
run on a parent's failure), claim, heartbeat, the outcomes a worker writes (complete, fail,
retry later, cancel, release at shutdown), a user's cancel and retry, the clock moving on, and
the rescuer (``worker.maintenance.Rescuer``, the code every worker runs). Workers keep what they
believe they hold, so they also write with stale attempts, as a paused or partitioned worker
would.

A small model says what each step must do; after every step the store must match it, and:

- every status change is an edge of ``jobs.TRANSITIONS``;
- a terminal job stays terminal, except through a user retry;
- at most one worker holds a live lease on a job (only its fenced writes land);
- ``attempt`` never decreases, and no job runs more attempts than it is allowed;
- a job's count of unsettled parents (``waiting_on``) is the number of its parents not
  finished; a ``waiting`` job has at least one; a job is claimed only when none is left;
- a job cancelled by a parent names in ``blocked_by`` a parent that failed or was cancelled;
  a user retry of that parent puts it back to ``waiting`` (store/sql/*/013_workflows.sql);
- the counts per queue and status (``GET /queues``) are the jobs' statuses, counted.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from jobhandler import App, Settings
from jobhandler.model.errors import InvalidTransition
from jobhandler.model.jobs import (
    FREE_INTERRUPTIONS,
    TERMINAL,
    TRANSITIONS,
    UNSTARTED,
    Job,
    JobStatus,
    NewJob,
    Outcome,
    Transition,
)
from jobhandler.model.records import JobFilter, JobRef
from jobhandler.model.retry import RetryPolicy
from jobhandler.model.workflows import NewWorkflow, WorkflowMember
from jobhandler.store import Store
from jobhandler.worker.maintenance import WORKER_LOST, Rescuer

T = TypeVar("T")

START = 1_900_000_000.0
LEASE = 30.0
BACKOFF = RetryPolicy(base=5.0, factor=2.0, max_delay=60.0, jitter=0.0)
WORKERS = ("w1", "w2")
# Every status change the state machine allows (model/jobs.py), HOLD included: no job is due
# while a parent is unsettled (store/sql/*/013_workflows.sql).
LEGAL = {(source, edge.target) for edge in TRANSITIONS.values() for source in edge.sources}
PROCESSING = JobStatus.PROCESSING
WAITING = JobStatus.WAITING
BLOCKED = "parent"  # a job a parent's failure cancelled: its error starts so
PENDING_STATUSES = TRANSITIONS[Transition.CLAIM].sources
FAILED = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class Expected:
    """What the model says one job must look like in the store."""

    status: JobStatus
    attempt: int
    uncounted: int
    max_attempts: int
    priority: int
    run_at: float
    seq: int
    worker_id: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    error: str | None = None
    interrupted: int = 0  # runs handed back (RELEASE): free up to FREE_INTERRUPTIONS
    # Workflows: the parents' ids, whether it runs after a parent's failure, how many parents
    # are unsettled, and the parent whose failure cancelled it.
    parents: tuple[str, ...] = ()
    run_on_failure: bool = False
    waiting_on: int = 0
    blocked_by: str | None = None
    concurrency_key: str | None = None  # its tenant: keys of a queue are claimed in turns

    @property
    def attempts_left(self) -> bool:
        return self.attempt - self.uncounted < self.max_attempts

    def live(self, worker: str, attempt: int) -> bool:
        """Would this worker's write with this attempt land? (Its lease is the live one.)"""
        return self.status is PROCESSING and self.worker_id == worker and self.attempt == attempt


class _RolledBack(Exception):
    """Raised in a transaction whose completion did not apply, to roll it back."""


@contextmanager
def sqlite_database() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="jh-stateful-")
    try:
        yield f"sqlite:///{folder}/j.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class StoreMachine(RuleBasedStateMachine):
    # Each example gets an empty database of its own from this.
    database: Callable[[], AbstractContextManager[str]] = sqlite_database

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.database_cm = type(self).database()
        database_url = self.database_cm.__enter__()
        self.app = App(clock=lambda: self.now)

        @self.app.task(name="t", retry=BACKOFF)
        async def t(payload: int) -> None:
            """Never run here: registered so the rescuer knows the task's retry policy."""

        self.runner = asyncio.Runner()
        self.connected = self.app.connected(Settings(database_url=database_url))
        self.runner.run(self.connected.__aenter__())
        self.rescuer = Rescuer(self.app, self.app.settings)
        self.model: dict[str, Expected] = {}
        self.held: dict[str, dict[str, int]] = {w: {} for w in WORKERS}  # worker: job -> attempt
        self.seen: dict[str, Job] = {}  # the store as last observed
        self.children: dict[str, list[str]] = {}  # workflow edges, from a parent
        self.retried: set[str] = set()  # jobs a user retried in the current step

    def teardown(self) -> None:
        self.runner.run(self.connected.__aexit__(None, None, None))
        self.runner.close()
        self.database_cm.__exit__(None, None, None)

    @property
    def store(self) -> Store:
        return self.app.service.store

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def pick(self, index: int) -> str:
        ids = sorted(self.model)
        return ids[index % len(ids)]

    # -- the three actors: users, workers, time (with the rescuers that watch it) -----------
    # Few rules, each choosing its action: Hypothesis turns whole rules off at random in each
    # example (swarm testing), and interesting bugs need all three actors in one example.

    @rule(data=st.data())
    def user(self, data: st.DataObject) -> None:
        actions = (
            ["submit", "workflow", "cancel", "retry"] if self.model else ["submit", "workflow"]
        )
        action = data.draw(st.sampled_from(actions), label="user")
        if action == "workflow":
            size = data.draw(st.integers(2, 5), label="jobs")
            shape = [
                (
                    sorted(data.draw(st.sets(st.integers(0, i - 1), max_size=3), label="after"))
                    if i
                    else [],
                    data.draw(st.booleans(), label="runs on parent failure"),
                )
                for i in range(size)
            ]
            self.submit_workflow(shape, data.draw(st.integers(1, 2), label="max_attempts"))
            return
        if action == "submit":
            self.submit(
                data.draw(st.integers(1, 3), label="count"),
                data.draw(st.sampled_from([0, 0, 1]), label="priority"),
                data.draw(st.sampled_from([0.0, 0.0, 20.0]), label="delay"),
                data.draw(st.integers(1, 3), label="max_attempts"),
                data.draw(st.sampled_from([None, None, "a", "b"]), label="concurrency_key"),
            )
            return
        job_id = self.pick(data.draw(st.integers(0, 50), label="job"))
        self.user_cancels(job_id) if action == "cancel" else self.user_retries(job_id)

    @rule(data=st.data())
    def worker(self, data: st.DataObject) -> None:
        held = sorted((w, j) for w in WORKERS for j in self.held[w])
        actions = ["claim", "heartbeat"] + ["finish"] * 2 * bool(held)
        action = data.draw(st.sampled_from(actions), label="worker does")
        if action == "finish":
            worker, job_id = data.draw(st.sampled_from(held), label="run")
            kinds = ["complete", "complete_in_transaction", "fail", "cancel", "release"]
            kind = data.draw(st.sampled_from(kinds))
            self.worker_finishes(worker, job_id, kind)
            return
        worker = data.draw(st.sampled_from(WORKERS), label="worker")
        if action == "claim":
            self.claim(worker, data.draw(st.integers(1, 3), label="limit"))
        else:
            self.heartbeat(worker)

    @rule(seconds=st.sampled_from([0.0, 1.0, 5.0, 29.0, 31.0, 60.0]))
    def time_passes(self, seconds: float) -> None:
        """The clock moves on, then a rescuer looks for expired leases, as workers do."""
        self.now += seconds
        self.rescue()

    # -- users -----------------------------------------------------------------------------

    def submit(
        self, count: int, priority: int, delay: float, max_attempts: int, key: str | None
    ) -> None:
        first = len(self.model)  # ids follow the submit order, so each example replays alike
        new = [
            NewJob(
                *(f"job-{n:03d}", "t", "default", 0, priority, max_attempts, None),
                self.now + delay,
                concurrency_key=key,
            )
            for n in range(first, first + count)
        ]
        jobs = self.run(self.store.insert_jobs(new, self.now))
        status = JobStatus.SCHEDULED if delay > 0 else JobStatus.QUEUED
        assert [j.status for j in jobs] == [status] * count
        for j in new:
            self.model[j.id] = Expected(
                status, 0, 0, max_attempts, priority, j.run_at, len(self.model), concurrency_key=key
            )

    def submit_workflow(self, shape: list[tuple[list[int], bool]], max_attempts: int) -> None:
        """A graph: each job after some earlier ones, cancelled or run on a parent's failure."""
        first = len(self.model)
        ids = [f"job-{n:03d}" for n in range(first, first + len(shape))]
        members = []
        for i, (after, run) in enumerate(shape):
            new = NewJob(ids[i], "t", "default", 0, 0, max_attempts, None, self.now)
            dependents = sum(i in later for later, _ in shape)
            parents = tuple(ids[p] for p in after)
            members.append(
                WorkflowMember(new, f"k{i}", self.now, parents, dependents, "run" if run else None)
            )
        wf = NewWorkflow(f"wf-{first:03d}", "wf", self.now, members)
        jobs = self.run(self.store.insert_workflow(wf))
        assert [j.id for j in jobs] == ids
        for member, job in zip(members, jobs, strict=True):
            status = WAITING if member.after else JobStatus.QUEUED
            assert (job.status, job.waiting_on) == (status, len(member.after))
            for parent in member.after:
                self.children.setdefault(parent, []).append(job.id)
            self.model[job.id] = Expected(
                status,
                0,
                0,
                max_attempts,
                0,
                self.now,
                seq=len(self.model),
                parents=member.after,
                run_on_failure=member.on_parent_failure == "run",
                waiting_on=len(member.after),
            )

    def user_cancels(self, job_id: str) -> None:
        was = self.model[job_id]
        if was.status.terminal:
            with pytest.raises(InvalidTransition):
                self.run(self.store.request_cancel(job_id, self.now))
            return
        job = self.run(self.store.request_cancel(job_id, self.now))
        if was.status in UNSTARTED:
            now = replace(was, status=JobStatus.CANCELLED, cancel_requested=True)
        else:  # running: flagged for its worker to stop it
            now = replace(was, cancel_requested=True)
        assert job.status is now.status
        self.model[job_id] = now
        self.moved(job_id, was.status)

    def user_retries(self, job_id: str) -> None:
        was = self.model[job_id]
        if was.status not in TRANSITIONS[Transition.RETRY].sources:
            with pytest.raises(InvalidTransition):
                self.run(self.store.retry_job(job_id, self.now))
            return
        self.run(self.store.retry_job(job_id, self.now))
        self.retried.add(job_id)
        self.model[job_id] = replace(
            was,
            status=JobStatus.QUEUED,  # or waiting, while a parent is unsettled (moved)
            uncounted=was.attempt,  # a user retry starts afresh
            run_at=self.now,
            cancel_requested=False,
            lease_expires_at=None,
            error=None,
            blocked_by=None,
        )
        self.moved(job_id, was.status)

    # -- workflows: what the triggers jobs_settle and jobs_reopen do in the same write --------

    def moved(self, job_id: str, before: JobStatus) -> None:
        m = self.model[job_id]
        if m.status in PENDING_STATUSES and m.waiting_on:  # due again, a parent unsettled
            self.model[job_id] = m = replace(m, status=WAITING)
        after = m.status
        if not before.terminal and after.terminal:
            self.settle(job_id)
        elif before.terminal and not after.terminal:
            self.reopen(job_id)

    def settle(self, parent: str) -> None:
        """The parent finished: each child waits on one fewer; a waiting one is due when none
        is left, or cancelled at once if the parent did not complete (unless it runs anyway)."""
        failed = self.model[parent].status is not JobStatus.COMPLETED
        for child in self.children.get(parent, []):
            c = self.model[child]
            c = replace(c, waiting_on=c.waiting_on - 1)
            if c.status is WAITING and failed and not c.run_on_failure:
                self.model[child] = replace(
                    c, status=JobStatus.CANCELLED, blocked_by=parent, error=BLOCKED
                )
                self.settle(child)
                continue
            if c.status is WAITING and c.waiting_on == 0:
                ahead = c.run_at > self.now  # a retry's backoff, kept
                c = replace(c, status=JobStatus.SCHEDULED if ahead else JobStatus.QUEUED)
            self.model[child] = c

    def reopen(self, parent: str) -> None:
        """The parent runs again: each child waits on it again; one its end cancelled waits
        again, unless another parent that failed still blocks it (then that one is named)."""
        for child in self.children.get(parent, []):
            c = self.model[child]
            c = replace(c, waiting_on=c.waiting_on + 1)
            if c.status in PENDING_STATUSES:
                c = replace(c, status=WAITING)
            if c.status is JobStatus.CANCELLED and c.blocked_by == parent:
                others = [q for q in c.parents if q != parent and self.model[q].status in FAILED]
                if not others:
                    self.model[child] = replace(c, status=WAITING, blocked_by=None, error=None)
                    self.retried.add(child)  # a terminal job changed: by the user's retry
                    self.reopen(child)
                    continue
                c = replace(c, blocked_by=min(others))
            self.model[child] = c

    # -- workers -----------------------------------------------------------------------------

    def claim(self, worker: str, limit: int) -> None:
        due = [
            (i, m)
            for i, m in self.model.items()
            if m.status in TRANSITIONS[Transition.CLAIM].sources and m.run_at <= self.now
        ]
        due.sort(key=lambda im: (-im[1].priority, im[1].run_at, im[1].seq))
        jobs = self.run(self.store.claim_jobs(["default"], worker, limit, self.now, LEASE))
        self.check_claim_order([i for i, _ in due], {j.id for j in jobs}, limit)
        for job in jobs:
            was = self.model[job.id]
            assert job.attempt == was.attempt + 1
            unsettled = [p for p in was.parents if not self.model[p].status.terminal]
            assert not unsettled, f"{job.id} runs before its parents {unsettled} finished"
            self.model[job.id] = replace(
                was,
                status=PROCESSING,
                attempt=job.attempt,
                worker_id=worker,
                lease_expires_at=self.now + LEASE,
                cancel_requested=False,
            )
            self.held[worker][job.id] = job.attempt

    def check_claim_order(self, due: list[str], taken: set[str], limit: int) -> None:
        """With no keyed job due, the first ``limit`` in claim order; with some, in turns:
        each key (and the unkeyed jobs, one more turn) gives its first jobs, and the turns
        that still have jobs gave as many as one another, give or take one."""
        groups: dict[str | None, list[str]] = {}
        for job_id in due:
            groups.setdefault(self.model[job_id].concurrency_key, []).append(job_id)
        if set(groups) <= {None}:
            assert taken == set(due[:limit])
            return
        assert len(taken) == min(limit, len(due)), (taken, groups)
        gave = {}
        for key, ids in groups.items():
            gave[key] = sum(i in taken for i in ids)
            assert set(ids[: gave[key]]) == {i for i in ids if i in taken}, (key, ids, taken)
        left = [gave[k] for k, ids in groups.items() if len(ids) > gave[k]]
        assert not left or max(gave.values()) - min(left) <= 1, (gave, groups)

    def heartbeat(self, worker: str) -> None:
        refs = [JobRef(i, a) for i, a in self.held[worker].items()]
        reply = self.run(self.store.heartbeat(worker, refs, self.now, LEASE))
        for job_id, m in self.model.items():
            if m.status is PROCESSING and m.worker_id == worker:
                self.model[job_id] = replace(m, lease_expires_at=self.now + LEASE)
        lost = {r.id for r in refs if not self.model[r.id].live(worker, r.attempt)}
        cancel = {r.id for r in refs if r.id not in lost and self.model[r.id].cancel_requested}
        assert reply.lost == lost
        assert reply.cancel == cancel
        for job_id in lost:  # the worker stops those runs and forgets them
            del self.held[worker][job_id]

    def worker_finishes(self, worker: str, job_id: str, kind: str) -> None:
        """A worker writes the outcome of a run it believes it holds (maybe no longer)."""
        attempt = self.held[worker].pop(job_id)
        was = self.model[job_id]
        outcome = self._worker_outcome(job_id, attempt, kind, was)
        if kind == "complete_in_transaction":
            applied = self.run(self._complete_in_transaction(outcome))
        else:
            (applied,) = self.run(self.store.finish_jobs([outcome], self.now))
        assert applied == was.live(worker, attempt), (kind, was, attempt)
        if not applied:
            return
        target = TRANSITIONS[outcome.transition].target
        released = outcome.transition is Transition.RELEASE
        self.model[job_id] = replace(
            was,
            status=target,
            uncounted=was.uncounted + (released and was.interrupted < FREE_INTERRUPTIONS),
            interrupted=was.interrupted + released,
            run_at=outcome.run_at if outcome.run_at is not None else was.run_at,
            lease_expires_at=None,
            error=outcome.error,
        )
        self.moved(job_id, was.status)

    async def _complete_in_transaction(self, outcome: Outcome) -> bool:
        """A task's ``ctx.transaction()``: the completion in a transaction of its own, rolled
        back when its fence fails; once committed, the worker's own completion of the run
        changes nothing."""
        try:
            async with self.store.transaction() as conn:
                if not await self.store.finish_in(conn, outcome, self.now):
                    raise _RolledBack
        except _RolledBack:
            return False
        assert await self.store.finish_jobs([outcome], self.now) == [False]
        return True

    def _worker_outcome(self, job_id: str, attempt: int, kind: str, was: Expected) -> Outcome:
        if kind in ("complete", "complete_in_transaction"):
            return Outcome(job_id, attempt, Transition.COMPLETE, result=attempt)
        if kind == "cancel":
            return Outcome(job_id, attempt, Transition.ABORT, error="cancelled")
        if kind == "release":
            return Outcome(job_id, attempt, Transition.RELEASE)
        # The run raised: retried after a backoff while attempts are left (as the worker does).
        if was.attempts_left and was.attempt == attempt:
            return Outcome(
                job_id, attempt, Transition.RETRY_LATER, error="boom", run_at=self.now + 7
            )
        return Outcome(job_id, attempt, Transition.FAIL, error="boom")

    # -- the rescuer ----------------------------------------------------------------------------

    def rescue(self) -> None:
        self.run(self.rescuer.run_once())
        for job_id in sorted(self.model):
            m = self.model[job_id]
            if m.status is not PROCESSING:
                continue
            assert m.lease_expires_at is not None
            if m.lease_expires_at >= self.now:
                continue
            if m.cancel_requested:
                status, run_at, error = JobStatus.CANCELLED, m.run_at, "cancelled"
            elif m.attempts_left:
                used = m.attempt - m.uncounted
                status, run_at, error = (
                    JobStatus.SCHEDULED,
                    self.now + BACKOFF.delay(used),
                    WORKER_LOST,
                )
            else:
                status, run_at, error = JobStatus.FAILED, m.run_at, WORKER_LOST
            self.model[job_id] = replace(
                m, status=status, run_at=run_at, error=error, lease_expires_at=None
            )
            self.moved(job_id, PROCESSING)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def store_matches_model_and_rules(self) -> None:
        page = self.run(self.store.list_jobs(JobFilter(), 1000, None))
        jobs = {j.id: j for j in page.jobs}
        assert set(jobs) == set(self.model)
        for job_id, job in jobs.items():
            m = self.model[job_id]
            assert (job.status, job.attempt, job.uncounted) == (m.status, m.attempt, m.uncounted)
            assert job.cancel_requested == m.cancel_requested
            if job.status in WAITING:
                assert job.run_at == pytest.approx(m.run_at)
            if job.status is PROCESSING:
                assert job.worker_id == m.worker_id
                assert job.lease_expires_at == pytest.approx(m.lease_expires_at)
            else:
                assert job.lease_expires_at is None, "a job that is not running holds a lease"
            if m.error == BLOCKED and job.status is JobStatus.CANCELLED:
                assert job.error is not None and f"({job.blocked_by})" in job.error, job.error
            elif job.status in TERMINAL or job.status is JobStatus.SCHEDULED:
                assert job.error == m.error
            self.check_workflow_job(job, jobs)
            # The rules, checked against the store alone:
            assert job.attempts_used <= job.max_attempts
            assert 0 <= job.uncounted <= job.attempt
            before = self.seen.get(job_id)
            if before is not None:
                assert job.attempt >= before.attempt, "attempt went down"
                if job.status is not before.status:
                    assert (before.status, job.status) in LEGAL, (before.status, job.status)
                    if before.status in TERMINAL:
                        assert job_id in self.retried, "a terminal job changed"
        # At most one live lease per job: only one (worker, attempt) may write it.
        for job_id, m in self.model.items():
            holders = [w for w in WORKERS if m.live(w, self.held[w].get(job_id, -1))]
            assert len(holders) <= 1
        self.seen = jobs
        self.retried = set()

    def check_workflow_job(self, job: Job, jobs: dict[str, Job]) -> None:
        """The fan-in count and the blocking parent, against the store alone."""
        m = self.model[job.id]
        assert tuple(job.after or ()) == m.parents
        unsettled = [p for p in m.parents if not jobs[p].status.terminal]
        assert job.waiting_on == len(unsettled) == m.waiting_on, (job.id, job.waiting_on)
        if job.status is WAITING:
            assert unsettled, "a waiting job with nothing to wait for"
        if job.status in PENDING_STATUSES:
            assert not unsettled, f"{job.id} is due before its parents {unsettled} finished"
        if job.status is JobStatus.CANCELLED and m.error == BLOCKED:
            assert job.blocked_by in m.parents
            assert jobs[job.blocked_by].status in FAILED, "blocked by a parent that did not fail"
            self.model[job.id] = replace(m, blocked_by=job.blocked_by)  # which one, if several

    @invariant()
    def counts_are_the_statuses(self) -> None:
        """``GET /queues``: the counts per status are the jobs' statuses, counted."""
        counted: dict[str, int] = {}
        for m in self.model.values():
            counted[m.status.value] = counted.get(m.status.value, 0) + 1
        stats = {q.queue: q.counts for q in self.run(self.store.queue_stats(self.now))}
        shown = {k: v for k, v in stats.get("default", {}).items() if v}
        assert shown == counted


MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.timeout(480)
def test_state_machine_on_sqlite() -> None:
    run_state_machine_as_test(StoreMachine, settings=MACHINE_SETTINGS)


@pytest.mark.postgres
@pytest.mark.timeout(480)
def test_state_machine_on_postgres(pg_database_url: str) -> None:
    @contextmanager
    def emptied() -> Iterator[str]:
        # One database for every example (creating one takes seconds): emptied before each.
        with psycopg.connect(pg_database_url, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_version'"
            ).fetchall()
            if tables:
                conn.execute(f"TRUNCATE {', '.join(t for (t,) in tables)}")
        yield pg_database_url

    class PostgresMachine(StoreMachine):
        database = staticmethod(emptied)

    # Fewer examples than on SQLite: each step costs several round trips to the server.
    run_state_machine_as_test(PostgresMachine, settings=settings(MACHINE_SETTINGS, max_examples=30))


async def test_stale_cancel_cannot_undo_a_user_retry(store: Store) -> None:
    """A worker's late ABORT (its write was delayed past its lease) must change nothing.

    The user cancelled a running job; its worker stopped the run, but could not write the
    outcome (say the store was unreachable) before its lease ran out. The rescuer ended the job
    cancelled, and the user retried it. The worker's write finally lands: it must be refused.
    """
    new = NewJob(str(uuid.uuid4()), "t", "default", 0, 0, 3, None, START)
    await store.insert_jobs([new], START)
    (job,) = await store.claim_jobs(["default"], "w1", 1, START, LEASE)
    await store.request_cancel(job.id, START + 1)
    late = Outcome(job.id, job.attempt, Transition.ABORT, error="cancelled")
    later = START + LEASE + 5
    rescue = replace(late, only_if_lease_expired_by=later)
    assert await store.finish_jobs([rescue], later) == [True]
    assert (await store.retry_job(job.id, later)).status is JobStatus.QUEUED

    assert await store.finish_jobs([late], later + 1) == [False]
    retried = await store.get_job(job.id)
    assert retried is not None and retried.status is JobStatus.QUEUED
