"""A Hypothesis state machine drives a real store (SQLite, then PostgreSQL) the way workers,
rescuers and users do.

Steps: submit, claim, heartbeat, the outcomes a worker writes (complete, fail, retry later,
cancel, release at shutdown), a user's cancel and retry, the clock moving on, and the rescuer
(``worker.maintenance.Rescuer``, the code every worker runs). Workers keep what they believe
they hold, so they also write with stale attempts, as a paused or partitioned worker would.

A small model says what each step must do; after every step the store must match it, and:

- every status change is an edge of ``jobs.TRANSITIONS``;
- a terminal job stays terminal, except through a user retry;
- at most one worker holds a live lease on a job (only its fenced writes land);
- ``attempt`` never decreases, and no job runs more attempts than it is allowed.
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
    TERMINAL,
    TRANSITIONS,
    WAITING,
    Job,
    JobStatus,
    NewJob,
    Outcome,
    Transition,
)
from jobhandler.model.records import JobFilter, JobRef
from jobhandler.model.retry import RetryPolicy
from jobhandler.store import Store
from jobhandler.worker.maintenance import WORKER_LOST, Rescuer

T = TypeVar("T")

START = 1_900_000_000.0
LEASE = 30.0
BACKOFF = RetryPolicy(base=5.0, factor=2.0, max_delay=60.0, jitter=0.0)
WORKERS = ("w1", "w2")
LEGAL = {(source, edge.target) for edge in TRANSITIONS.values() for source in edge.sources}
PROCESSING = JobStatus.PROCESSING


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

    @property
    def attempts_left(self) -> bool:
        return self.attempt - self.uncounted < self.max_attempts

    def live(self, worker: str, attempt: int) -> bool:
        """Would this worker's write with this attempt land? (Its lease is the live one.)"""
        return self.status is PROCESSING and self.worker_id == worker and self.attempt == attempt


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
        actions = ["submit", "submit", "cancel", "retry"] if self.model else ["submit"]
        action = data.draw(st.sampled_from(actions), label="user")
        if action == "submit":
            self.submit(
                data.draw(st.integers(1, 3), label="count"),
                data.draw(st.sampled_from([0, 0, 1]), label="priority"),
                data.draw(st.sampled_from([0.0, 0.0, 20.0]), label="delay"),
                data.draw(st.integers(1, 3), label="max_attempts"),
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
            kind = data.draw(st.sampled_from(["complete", "fail", "cancel", "release"]))
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

    def submit(self, count: int, priority: int, delay: float, max_attempts: int) -> None:
        first = len(self.model)  # ids follow the submit order, so each example replays alike
        new = [
            NewJob(
                f"job-{n:03d}", "t", "default", 0, priority, max_attempts, None, self.now + delay
            )
            for n in range(first, first + count)
        ]
        jobs = self.run(self.store.insert_jobs(new, self.now))
        status = JobStatus.SCHEDULED if delay > 0 else JobStatus.QUEUED
        assert [j.status for j in jobs] == [status] * count
        for j in new:
            self.model[j.id] = Expected(
                status, 0, 0, max_attempts, priority, j.run_at, seq=len(self.model)
            )

    def user_cancels(self, job_id: str) -> None:
        was = self.model[job_id]
        if was.status.terminal:
            with pytest.raises(InvalidTransition):
                self.run(self.store.request_cancel(job_id, self.now))
            return
        job = self.run(self.store.request_cancel(job_id, self.now))
        if was.status in WAITING:
            now = replace(was, status=JobStatus.CANCELLED, cancel_requested=True)
        else:  # running: flagged for its worker to stop it
            now = replace(was, cancel_requested=True)
        assert job.status is now.status
        self.model[job_id] = now

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
            status=JobStatus.QUEUED,
            uncounted=was.attempt,  # a user retry starts afresh
            run_at=self.now,
            cancel_requested=False,
            lease_expires_at=None,
            error=None,
        )

    # -- workers -----------------------------------------------------------------------------

    def claim(self, worker: str, limit: int) -> None:
        due = [
            (i, m)
            for i, m in self.model.items()
            if m.status in TRANSITIONS[Transition.CLAIM].sources and m.run_at <= self.now
        ]
        due.sort(key=lambda im: (-im[1].priority, im[1].run_at, im[1].seq))
        expected = {i for i, _ in due[:limit]}
        jobs = self.run(self.store.claim_jobs(["default"], worker, limit, self.now, LEASE))
        assert {j.id for j in jobs} == expected
        for job in jobs:
            was = self.model[job.id]
            assert job.attempt == was.attempt + 1
            self.model[job.id] = replace(
                was,
                status=PROCESSING,
                attempt=job.attempt,
                worker_id=worker,
                lease_expires_at=self.now + LEASE,
                cancel_requested=False,
            )
            self.held[worker][job.id] = job.attempt

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
        (applied,) = self.run(self.store.finish_jobs([outcome], self.now))
        assert applied == was.live(worker, attempt), (kind, was, attempt)
        if not applied:
            return
        target = TRANSITIONS[outcome.transition].target
        self.model[job_id] = replace(
            was,
            status=target,
            uncounted=was.uncounted + (outcome.transition is Transition.RELEASE),
            run_at=outcome.run_at if outcome.run_at is not None else was.run_at,
            lease_expires_at=None,
            error=outcome.error,
        )

    def _worker_outcome(self, job_id: str, attempt: int, kind: str, was: Expected) -> Outcome:
        if kind == "complete":
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
        for job_id, m in self.model.items():
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
            if job.status in TERMINAL or job.status is JobStatus.SCHEDULED:
                assert job.error == m.error
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


MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


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
