"""Transactional completion, proven on real worker processes (both stores).

The workers run ``txapp`` (tests/apps/txapp.py): its tasks write a row to ``effects`` in the
store's own database inside ``ctx.transaction()``, which also completes the job. The headline
is the exactly-once test: 2,000 such jobs while workers are killed with ``kill -9`` again and
again, and at the end every job is completed with exactly one row, and no row is without its
completed job. The guarantees are written in docs/transactions.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobhandler import JobStatus, Settings
from jobhandler.model.jobs import Outcome, Transition
from jobhandler.store import sqlite_path
from tests.acceptance.test_crash import Db, start_worker
from tests.conftest import Process, wait_until
from tests.conftest import test_env as make_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
import txapp

Spawn = Callable[..., Process]
JOBS = 2000


class TxDb(Db):
    """The store through txapp's App (test_crash.Db reads crashapp's), and the effects table."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._runner = asyncio.Runner()
        self._connected = txapp.app.connected(Settings(database_url=url))
        self.app = self._runner.run(self._connected.__aenter__())
        self.sql(txapp.EFFECTS)

    @property
    def sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        if self.sqlite:
            conn = sqlite3.connect(sqlite_path(self.url), timeout=30.0, isolation_level=None)
            try:
                return conn.execute(statement).fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.url, autocommit=True) as pg:
            cur = pg.execute(statement)
            return cur.fetchall() if cur.description else []

    def effects(self) -> Counter[str]:
        """How many rows each job committed."""
        return Counter(str(row[0]) for row in self.sql("SELECT job_id FROM effects"))

    def attempts_of_effects(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for job_id, attempt in self.sql("SELECT job_id, attempt FROM effects"):
            found.setdefault(str(job_id), []).append(int(attempt))  # type: ignore[call-overload]
        return found


@pytest.fixture
def db(database_url: str) -> Iterator[TxDb]:
    opened = TxDb(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    folder = tmp_path / "gates"
    folder.mkdir()
    return folder


@pytest.fixture
def env(database_url: str, gates: Path) -> dict[str, str]:
    return make_env(database_url, JOBHANDLER_APP="txapp:app", TXAPP_GATES=str(gates))


def settled(db: TxDb, ids: list[str]) -> bool:
    return all(db.job(i).status.terminal for i in ids)


@pytest.mark.parametrize("task", ["effect", "effect_sync"])
def test_a_transaction_commits_the_row_with_the_completion(
    db: TxDb, env: dict[str, str], spawn: Spawn, task: str
) -> None:
    ids = db.submit(task, [{}, {}, {}])
    start_worker(spawn, env, concurrency=4)
    wait_until(lambda: settled(db, ids), timeout=30)
    for job_id in ids:
        job = db.job(job_id)
        assert job.status is JobStatus.COMPLETED and job.attempt == 1
        assert job.result == {"attempt": 1}, "the result given to the transaction"
    assert db.attempts_of_effects() == {i: [1] for i in ids}
    # The attempts list, read from the store, shows the run completed as any other.
    attempts = db.run(db.app.service.jobs.attempts(ids[0]))
    assert [a.outcome for a in attempts] == ["completed"]


@pytest.mark.parametrize("task", ["effect", "effect_sync"])
def test_an_error_inside_rolls_back_both_and_the_job_is_retried(
    db: TxDb, env: dict[str, str], spawn: Spawn, task: str
) -> None:
    (job_id,) = db.submit(task, [{"fail_attempts": 2}])
    start_worker(spawn, env, concurrency=2)
    wait_until(lambda: settled(db, [job_id]), timeout=30)
    job = db.job(job_id)
    assert job.status is JobStatus.COMPLETED and job.attempt == 3
    assert db.attempts_of_effects() == {job_id: [3]}, "the failed attempts' rows were kept"


def test_many_at_once_in_one_worker_all_commit_once_without_waiting_out_a_lock(
    db: TxDb, env: dict[str, str], spawn: Spawn
) -> None:
    """200 transactions, 50 running at once in one worker: they queue for SQLite's one writer,
    or for the pooled PostgreSQL connections, and none gives up waiting (a lock timeout
    would fail the run, and show as a second attempt)."""
    payloads = [{"hold": 0.005} for _ in range(100)]
    ids = db.submit("effect", payloads) + db.submit("effect_sync", payloads)
    start_worker(spawn, env, concurrency=50)
    wait_until(lambda: settled(db, ids), timeout=60, interval=0.2)
    jobs = db.jobs(ids)
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    assert {j.attempt for j in jobs.values()} == {1}, "a run failed and ran again"
    assert db.attempts_of_effects() == {i: [1] for i in ids}, "each row exactly once"


def test_a_lost_fence_rolls_back_and_the_task_sees_lease_lost(
    db: TxDb, env: dict[str, str], spawn: Spawn, gates: Path
) -> None:
    (job_id,) = db.submit("gated", [None])
    # Heartbeats far apart: the run learns that it lost the job from its fence, not from one.
    args = ["worker", "--concurrency", "1", "--heartbeat-interval", "60", "--lease", "120"]
    spawn(args, env)
    wait_until(lambda: (gates / f"{job_id}.started").exists(), timeout=30)
    # As a rescuer would: the run's attempt no longer holds the job (put off for an hour).
    now = time.time()
    moved = Outcome(job_id, 1, Transition.RETRY_LATER, error="moved by the test", run_at=now + 3600)
    assert db.run(db.app.service.store.finish_jobs([moved], now)) == [True]
    (gates / f"{job_id}.go").touch()
    wait_until(lambda: (gates / f"{job_id}.lost").exists(), timeout=30)
    assert "rolled back" in (gates / f"{job_id}.lost").read_text()
    job = db.job(job_id)
    assert job.status is JobStatus.SCHEDULED and job.attempt == 1, "the fence wrote nothing"
    assert job.error == "moved by the test"
    assert db.effects() == {}, "the row of a run that lost its job was committed"


def test_a_process_task_is_refused_with_the_reason(
    db: TxDb, env: dict[str, str], spawn: Spawn
) -> None:
    (job_id,) = db.submit("in_process", [None])
    start_worker(spawn, env, concurrency=1)
    wait_until(lambda: settled(db, [job_id]), timeout=30)
    result = db.job(job_id).result
    assert isinstance(result, str) and "isolation='process'" in result, result


def test_kill_9_again_and_again_every_job_has_exactly_one_row(
    db: TxDb, env: dict[str, str], spawn: Spawn
) -> None:
    """THE exactly-once test: the effect of ``ctx.transaction()`` happens once per job."""
    hold = 0.002 if db.sqlite else 0.01  # SQLite has one writer: its transactions queue
    payloads = [{"hold": hold} for _ in range(JOBS // 2)]
    ids = db.submit("effect", payloads) + db.submit("effect_sync", payloads)
    workers = [start_worker(spawn, env, concurrency=8) for _ in range(3)]
    kills = 0
    started = time.monotonic()
    while kills < 8:
        done = db.counts().get("completed", 0)
        if done >= JOBS * 0.9:
            break
        # Kill -9 once a few more jobs completed: mid-run, often mid-transaction.
        wait_until(lambda d=done: db.counts().get("completed", 0) >= d + JOBS // 12, 60)
        victim = workers[kills % len(workers)]
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.popen.wait(10) == -signal.SIGKILL
        workers[kills % len(workers)] = start_worker(spawn, env, concurrency=8)
        kills += 1
    wait_until(lambda: db.counts().get("completed", 0) == JOBS, timeout=90, interval=0.2)
    elapsed = time.monotonic() - started

    jobs = db.jobs(ids)
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    effects = db.effects()
    assert set(effects) == set(ids), "a completed job without its row, or a row without its job"
    assert {n for n in effects.values()} == {1}, {i: n for i, n in effects.items() if n != 1}
    rows = db.attempts_of_effects()
    assert all(rows[i] == [jobs[i].attempt] for i in ids), "a row from an attempt that lost"
    assert kills >= 4, f"only {kills} kills landed"
    rerun = sum(1 for j in jobs.values() if j.attempt > 1)
    assert rerun > 0, "no kill landed while jobs ran"
    print(f"{JOBS} jobs, {kills} kills, {rerun} runs again, {elapsed:.1f} s")


def test_a_committed_enqueue_wakes_a_worker_promptly(
    db: TxDb, env: dict[str, str], spawn: Spawn
) -> None:
    """The worker polls only every 30 s: a job it runs within seconds was woken by the commit
    (PostgreSQL: the NOTIFY sent at commit; SQLite: the file watch seeing the commit)."""
    worker = spawn(["worker", "--concurrency", "2", "--poll-interval", "30"], env)
    db.worker_id(worker)
    for attempt in range(2):  # the second: a worker that has been idle since the first
        if db.sqlite:
            conn: Any = sqlite3.connect(sqlite_path(db.url), isolation_level=None)
        else:
            conn = psycopg.connect(db.url, autocommit=True)  # BEGIN and COMMIT are ours
        try:
            conn.execute("BEGIN")
            handle = db.run(txapp.plain.enqueue(None, connection=conn))
            time.sleep(0.3)  # uncommitted: nothing for the worker to see, however awake
            assert db.run(db.app.service.store.get_job(handle.id)) is None
            committed = time.monotonic()
            conn.execute("COMMIT")
        finally:
            conn.close()
        wait_until(lambda h=handle: db.job(h.id).status is JobStatus.COMPLETED, timeout=10)
        assert time.monotonic() - committed < 5, f"run {attempt}: woken by a poll, not the commit"
