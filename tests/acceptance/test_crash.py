"""Crash safety, proven on real processes: kill -9, SIGSTOP, SIGTERM, a task that kills its worker.

Every test starts real ``jobhandler worker`` / ``jobhandler serve`` processes running the
``crashapp`` test App (tests/apps/crashapp.py). The tasks count their runs in a ledger file of
their own, so a lost job (0 runs) or a duplicate (2 runs) is counted exactly. The test reads the
store through the same App the workers run, and waits on what it sees there, never on sleeps.

The guarantees these tests prove are written in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from jobhandler import Job, JobStatus, Settings, SubmitRequest
from jobhandler.model.jobs import Outcome, Transition
from jobhandler.model.records import JobFilter
from jobhandler.store import sqlite_path
from jobhandler.worker import Worker
from tests.conftest import Process, Server, wait_until
from tests.conftest import test_env as make_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
import crashapp

T = TypeVar("T")

LEASE = 2.0
TIMING = [
    "--lease",
    str(LEASE),
    "--heartbeat-interval",
    "0.5",
    "--rescue-interval",
    "0.5",
    "--poll-interval",
    "0.2",
]
Spawn = Callable[..., Process]


# -- the test's view of the store ----------------------------------------------------------


class Db:
    """The store, read and written through the App the workers run, from synchronous tests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._runner = asyncio.Runner()
        self._connected = crashapp.app.connected(Settings(database_url=url))
        self.app = self._runner.run(self._connected.__aenter__())

    def close(self) -> None:
        self._runner.run(self._connected.__aexit__(None, None, None))
        self._runner.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def submit(self, task: str, payloads: Sequence[Any], **options: Any) -> list[str]:
        requests = [SubmitRequest(task=task, payload=p, **options) for p in payloads]
        ids: list[str] = []
        for start in range(0, len(requests), 1000):
            jobs = self.run(self.app.service.submits.submit_many(requests[start : start + 1000]))
            ids.extend(j.id for j in jobs)
        return ids

    def job(self, job_id: str) -> Job:
        return self.run(self.app.service.jobs.get(job_id))

    def jobs(self, ids: Sequence[str]) -> dict[str, Job]:
        return {i: self.job(i) for i in ids}

    def all_jobs(self, *statuses: JobStatus) -> list[Job]:
        found: list[Job] = []
        cursor = None
        while True:
            page = self.run(
                self.app.service.jobs.page(JobFilter(statuses=frozenset(statuses)), 1000, cursor)
            )
            found.extend(page.jobs)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    def running_under(self, worker_id: str) -> list[Job]:
        return [j for j in self.all_jobs(JobStatus.PROCESSING) if j.worker_id == worker_id]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for queue in self.run(self.app.service.flow.queue_stats()):
            for status, n in queue.counts.items():
                totals[status] = totals.get(status, 0) + n
        return totals

    def worker_id(self, proc: Process, timeout: float = 30.0) -> str:
        """The id the worker process registered with, once it has started."""
        found: list[str] = []

        def registered() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"worker exited early:\n{proc.output()}")
            found[:] = [w.id for w in self.run(self.app.service.workers()) if w.pid == proc.pid]
            return bool(found)

        wait_until(registered, timeout)
        return found[0]

    def all_terminal(self, ids: Sequence[str]) -> bool:
        return all(self.job(i).status.terminal for i in ids)

    def store_is_free(self, job_id: str) -> bool:
        """Can another process write ``job_id`` now (no paused process holds a lock on it)?"""
        if self.url.startswith(("postgresql://", "postgres://")):
            with psycopg.connect(self.url) as conn:
                conn.execute("SET lock_timeout = '300ms'")
                try:
                    conn.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
                except psycopg.errors.LockNotAvailable:
                    return False
                return True
        conn = sqlite3.connect(sqlite_path(self.url), timeout=0.3, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    opened = Db(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    path = str(tmp_path / "ledger.db")
    crashapp.init_ledger(path)
    return path


@pytest.fixture
def env(database_url: str, ledger: str) -> dict[str, str]:
    return make_env(database_url, JOBHANDLER_APP="crashapp:app", CRASHAPP_LEDGER=ledger)


def start_worker(
    spawn: Spawn,
    env: dict[str, str],
    *,
    concurrency: int,
    shutdown_timeout: float = 1.0,
    queues: str = "",
) -> Process:
    args = ["worker", "--concurrency", str(concurrency), "--shutdown-timeout"]
    args += [str(shutdown_timeout), *TIMING]
    return spawn([*args, "--queues", queues] if queues else args, env)


def start_api(spawn: Spawn, env: dict[str, str]) -> Server:
    server = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(server, Server)
    return server.wait_ready(30)


def pause(proc: Process, db: Db, job_id: str) -> None:
    """SIGSTOP the process at a moment it holds no lock on the store.

    A process frozen inside a write transaction would block every other writer (SQLite has
    one writer at a time) until it resumes: that tests the database, not our fencing.
    """
    for _ in range(100):
        os.kill(proc.pid, signal.SIGSTOP)
        if db.store_is_free(job_id):
            return
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the process never let go of the store")


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (an init that does not reap is common in containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


# -- kill -9 -------------------------------------------------------------------------------


def test_kill_9_worker_orphans_are_rescued_and_other_jobs_run_once(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    victim = start_worker(spawn, env, concurrency=4)
    survivor = start_worker(spawn, env, concurrency=8)
    victim_id, survivor_id = db.worker_id(victim), db.worker_id(survivor)
    ids = db.submit("ledger", [{"hold": 1.0, "retry_hold": 0.0}] * 16)

    def victim_busy() -> bool:
        held = db.running_under(victim_id)
        started = crashapp.read_runs(ledger)
        return len(held) == 4 and all(j.id in started for j in held)

    wait_until(victim_busy)
    pause(victim, db, ids[0])  # freeze it, so what it holds cannot change while we look
    orphans = {j.id for j in db.running_under(victim_id)}
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.time()
    assert victim.popen.wait(10) == -signal.SIGKILL
    assert len(orphans) == 4

    wait_until(lambda: db.all_terminal(ids), timeout=30)
    jobs, runs = db.jobs(ids), crashapp.read_runs(ledger)
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    for job_id in orphans:
        job = jobs[job_id]
        assert job.attempt == 2
        assert job.worker_id == survivor_id
        assert job.result == {"attempt": 2, "pid": survivor.pid}
        assert job.started_at is not None
        assert job.started_at - killed_at <= 2 * LEASE, "orphan not claimed again in 2 x lease"
        assert runs[job_id].attempts == [1, 2]
    for job_id in set(ids) - orphans:
        assert jobs[job_id].attempt == 1
        assert runs[job_id].runs == 1, f"job {job_id} ran {runs[job_id].runs} times"


def test_kill_9_worker_takes_its_process_runs_down_with_it(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    """A process-isolated run must not outlive its worker: nobody would ever read its result,
    and a CPU-bound one would burn a core until it ended on its own."""
    worker = start_worker(spawn, env, concurrency=1)
    (job_id,) = db.submit("crunch", [60])
    wait_until(lambda: job_id in crashapp.read_runs(ledger))
    (child_pid,) = crashapp.read_runs(ledger)[job_id].pids
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.popen.wait(10) == -signal.SIGKILL
    wait_until(lambda: process_gone(child_pid), timeout=5)


def test_three_workers_drain_5000_jobs_each_exactly_once(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    workers = [start_worker(spawn, env, concurrency=25) for _ in range(3)]
    for worker in workers:
        db.worker_id(worker)
    started = time.monotonic()
    ids = db.submit("ledger", [{}] * 5000)
    wait_until(lambda: db.counts().get("completed", 0) == 5000, timeout=150, interval=0.25)
    elapsed = time.monotonic() - started

    runs = crashapp.read_runs(ledger)
    assert set(runs) == set(ids), "a job was lost (or one ran that was never submitted)"
    duplicates = {i: r.runs for i, r in runs.items() if r.runs != 1}
    assert not duplicates, f"jobs ran more than once: {duplicates}"
    assert db.counts() == {"completed": 5000}
    pids = {pid for r in runs.values() for pid in r.pids}
    assert pids == {w.pid for w in workers}, "every worker should have taken a share"
    print(f"5000 jobs drained by 3 workers in {elapsed:.1f}s")


def test_restarted_worker_rescues_its_dead_predecessors_jobs_at_once(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    """Same machine, the old pid gone: no need to wait out a 60 s lease."""
    long_lease = ["worker", "--concurrency", "4", "--lease", "60", "--poll-interval", "0.2"]
    victim = spawn(long_lease, env)
    victim_id = db.worker_id(victim)
    ids = db.submit("ledger", [{"hold": 60.0, "retry_hold": 0.0}] * 4)
    wait_until(lambda: len(db.running_under(victim_id)) == 4)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.popen.wait(10) == -signal.SIGKILL
    restarted_at = time.time()
    successor = spawn(long_lease, env)
    wait_until(lambda: db.all_terminal(ids), timeout=20)
    for job in db.jobs(ids).values():
        assert job.status is JobStatus.COMPLETED
        assert job.result == {"attempt": 2, "pid": successor.pid}
        assert job.started_at is not None and job.started_at - restarted_at < 15
    assert victim_id not in {w.id for w in db.run(db.app.service.workers())}
    assert "is gone: rescued its 4 running jobs" in successor.output()


# -- SIGTERM -------------------------------------------------------------------------------


def test_sigterm_finishes_short_jobs_and_releases_long_ones(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    shutdown_timeout = 2.0
    worker = start_worker(spawn, env, concurrency=6, shutdown_timeout=shutdown_timeout)
    worker_id = db.worker_id(worker)
    short = db.submit("ledger", [{"hold": 1.0}] * 3, priority=1)
    long_async = db.submit("ledger", [{"hold": 60, "retry_hold": 0}] * 2, priority=1)
    long_thread = db.submit("slow_thread", [{"hold": 60, "retry_hold": 0}], priority=1)
    waiting = db.submit("ledger", [{}] * 3, priority=-1)  # no free slot for these yet
    running = short + long_async + long_thread

    def all_started() -> bool:
        held = {j.id for j in db.running_under(worker_id)}
        return held == set(running) and set(running) <= set(crashapp.read_runs(ledger))

    wait_until(all_started)
    os.kill(worker.pid, signal.SIGTERM)
    signalled = time.monotonic()
    code = worker.popen.wait(shutdown_timeout + 5)
    assert code == 0, worker.output()
    assert time.monotonic() - signalled <= shutdown_timeout + 5

    jobs = db.jobs(running + waiting)
    for job_id in short:
        assert jobs[job_id].status is JobStatus.COMPLETED
    for job_id in long_async + long_thread:
        job = jobs[job_id]
        assert job.status is JobStatus.QUEUED, job
        assert (job.attempt, job.attempts_used) == (1, 0), "a released run must not count"
        assert job.lease_expires_at is None
    for job_id in waiting:  # slots freed during the drain, but nothing is claimed after SIGTERM
        assert (jobs[job_id].status, jobs[job_id].attempt) == (JobStatus.QUEUED, 0)
    assert not db.running_under(worker_id)
    assert [e for e in crashapp.read_events(ledger) if e[0] in long_thread] == [
        (long_thread[0], 1, "saw-cancel")
    ]
    assert worker_id not in {w.id for w in db.run(db.app.service.workers())}

    # The released jobs are whole: the next worker runs them, with one attempt used.
    start_worker(spawn, env, concurrency=6)
    wait_until(lambda: db.all_terminal(long_async + long_thread + waiting))
    for job in db.jobs(long_async + long_thread).values():
        assert job.status is JobStatus.COMPLETED, job
        assert (job.attempt, job.attempts_used) == (2, 1)
    runs = crashapp.read_runs(ledger)
    assert all(runs[i].runs == 1 for i in short + waiting)


# -- SIGSTOP: a stale worker is fenced --------------------------------------------------------


def test_stopped_worker_past_its_lease_is_fenced_when_it_resumes(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    stale = start_worker(spawn, env, concurrency=1)
    stale_id = db.worker_id(stale)
    (job_id,) = db.submit("ledger", [{"hold": 30, "retry_hold": 0.2}])
    wait_until(
        lambda: db.job(job_id).worker_id == stale_id and job_id in crashapp.read_runs(ledger)
    )
    pause(stale, db, job_id)
    try:
        fresh = start_worker(spawn, env, concurrency=1)
        wait_until(lambda: db.job(job_id).status is JobStatus.COMPLETED, timeout=30)
        done = db.job(job_id)
        assert done.attempt == 2
        assert done.result == {"attempt": 2, "pid": fresh.pid}
    finally:
        os.kill(stale.pid, signal.SIGCONT)
    resumed = time.monotonic()
    wait_until(lambda: "lease lost" in stale.output(), timeout=10)
    abandoned_in = time.monotonic() - resumed

    assert db.job(job_id) == done, "the stale worker changed the job"
    assert crashapp.read_runs(ledger)[job_id].attempts == [1, 2]
    assert f"lease lost on job {job_id} (attempt 1)" in stale.output()
    assert abandoned_in < 5
    assert stale.popen.poll() is None, "the stale worker should carry on serving"


def test_stalled_worker_that_claims_its_rescued_job_again_drops_the_old_run(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    """The job comes back to the very worker that lost it: the old run must stop, the new one
    must finish. (A worker frozen past its lease, a rescuer elsewhere, the job due again.)"""
    stalled = start_worker(spawn, env, concurrency=2)
    stalled_id = db.worker_id(stalled)
    rescuer = start_worker(spawn, env, concurrency=1, queues="elsewhere")  # rescues, never runs
    db.worker_id(rescuer)
    (job_id,) = db.submit("ledger", [{"hold": 30, "retry_hold": 0.5}])
    wait_until(
        lambda: db.job(job_id).worker_id == stalled_id and job_id in crashapp.read_runs(ledger)
    )
    pause(stalled, db, job_id)
    try:
        wait_until(lambda: db.job(job_id).status is JobStatus.SCHEDULED, timeout=3 * LEASE)
    finally:
        os.kill(stalled.pid, signal.SIGCONT)

    wait_until(lambda: db.job(job_id).status is JobStatus.COMPLETED, timeout=10)
    done = db.job(job_id)
    assert done.result == {"attempt": 2, "pid": stalled.pid}
    wait_until(lambda: f"lease lost on job {job_id} (attempt 1)" in stalled.output(), timeout=5)
    assert crashapp.read_runs(ledger)[job_id].attempts == [1, 2]


async def test_worker_claiming_a_job_it_still_runs_stops_the_old_run(
    database_url: str,
    ledger: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same scenario, made deterministic in one process: the rescue is written directly,
    and heartbeats are too slow to tell the worker first. The worker claims attempt 2 of a job
    whose attempt 1 it still runs; it must stop attempt 1 (fenced) and finish attempt 2."""
    monkeypatch.setenv("CRASHAPP_LEDGER", ledger)
    settings = Settings(
        database_url=database_url,
        app="crashapp:app",
        concurrency=2,
        lease=60,
        heartbeat_interval=60,
        rescue_interval=60,
        poll_interval=0.05,
    )
    app = crashapp.app
    async with app.connected(settings):
        worker = Worker(app, settings)
        serving = asyncio.create_task(worker.run())

        async def until(condition: Callable[[], Any]) -> None:
            deadline = time.monotonic() + 10
            while not await condition():
                assert time.monotonic() < deadline, "condition not met within 10s"
                await asyncio.sleep(0.02)

        async def status() -> JobStatus:
            return (await app.service.jobs.get(job.id)).status

        (job,) = await app.service.submits.submit_many(
            [SubmitRequest(task="ledger", payload={"hold": 30, "retry_hold": 0.2})]
        )

        async def first_run_started() -> bool:
            return job.id in crashapp.read_runs(ledger)

        await until(first_run_started)
        # The worker stalled past its lease, and a rescuer elsewhere took the job back:
        now = app.clock()
        rescue = Outcome(job.id, 1, Transition.RESCUE, error="worker lost", run_at=now)
        assert await app.service.store.finish_jobs([rescue], now) == [True]

        async def completed() -> bool:
            return await status() is JobStatus.COMPLETED

        with caplog.at_level(logging.WARNING, "jobhandler.worker"):
            await until(completed)
            done = await app.service.jobs.get(job.id)
            assert done.result == {"attempt": 2, "pid": os.getpid()}
            assert f"lease lost on job {job.id} (attempt 1)" in caplog.text
        assert worker.running_jobs == []
        worker.stop()
        await asyncio.wait_for(serving, 10)
        assert (await app.service.jobs.get(job.id)) == done


# -- a task that kills its worker --------------------------------------------------------------


def test_task_killing_its_worker_fails_as_worker_lost_after_max_attempts(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    (poison,) = db.submit("poison", [None])
    # Claimed before the poison whenever both are due, so few die beside it; attempts to spare.
    others = db.submit("ledger", [{"hold": 0.05}] * 20, priority=1, max_attempts=5)
    current = [start_worker(spawn, env, concurrency=2)]
    deaths = []

    def supervise() -> bool:
        """Restart the worker whenever it dies, as systemd or Kubernetes would."""
        worker = current[-1]
        if worker.popen.poll() is not None:
            deaths.append(worker.popen.returncode)
            current.append(start_worker(spawn, env, concurrency=2))
        return db.all_terminal([poison, *others])

    wait_until(supervise, timeout=60, interval=0.1)

    job = db.job(poison)
    assert job.status is JobStatus.FAILED
    assert job.error == "worker lost"
    assert job.attempt == job.max_attempts == 3
    assert crashapp.read_runs(ledger)[poison].attempts == [1, 2, 3]
    assert deaths == [-signal.SIGKILL] * 3
    assert {j.status for j in db.jobs(others).values()} == {JobStatus.COMPLETED}


# -- cancel through the API, the worker in another process ------------------------------------


def test_cancel_through_the_api_stops_each_kind_of_run(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    api = start_api(spawn, env)
    client = httpx.Client(base_url=api.url, timeout=15)

    def submit(task: str, payload: Any) -> str:
        reply = client.post("/jobs", json={"task": task, "payload": payload})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def cancel(job_id: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        reply = client.post(f"/jobs/{job_id}/cancel")
        return reply, time.monotonic() - started

    queued = submit("ledger", {})  # no worker yet: it waits
    reply, _ = cancel(queued)
    assert reply.status_code == 200 and reply.json()["status"] == "cancelled"

    worker = start_worker(spawn, env, concurrency=4)
    on_loop = submit("ledger", {"hold": 60})
    in_thread = submit("slow_thread", {"hold": 60})
    in_process = submit("crunch", 60)
    running = [on_loop, in_thread, in_process]
    wait_until(
        lambda: (
            all(client.get(f"/jobs/{i}").json()["status"] == "processing" for i in running)
            and set(running) <= set(crashapp.read_runs(ledger))
        )
    )
    (child_pid,) = crashapp.read_runs(ledger)[in_process].pids
    assert child_pid != worker.pid

    took = {}
    for job_id in running:
        reply, took[job_id] = cancel(job_id)
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "cancelled"
    assert took[on_loop] < 2 and took[in_process] < 2, took
    assert took[in_thread] < 5, took
    wait_until(lambda: process_gone(child_pid), timeout=5)  # the child was killed, not orphaned
    assert (in_thread, 1, "saw-cancel") in crashapp.read_events(ledger)

    # A job submitted after the cancels runs: the worker has looked again, and ran none of them.
    after = submit("ledger", {})
    wait_until(lambda: client.get(f"/jobs/{after}").json()["status"] == "completed")
    runs = crashapp.read_runs(ledger)
    assert queued not in runs
    assert [runs[i].runs for i in running] == [1, 1, 1]

    # Cancelling a finished job is refused and changes nothing.
    for job_id in [queued, *running, after]:
        before = client.get(f"/jobs/{job_id}").json()
        reply, _ = cancel(job_id)
        assert reply.status_code == 409, reply.text
        assert reply.json()["error"]
        assert client.get(f"/jobs/{job_id}").json() == before
    statuses = {i: db.job(i).status for i in [queued, *running]}
    assert set(statuses.values()) == {JobStatus.CANCELLED}


# -- timeouts ------------------------------------------------------------------------------


def test_timeout_stops_each_kind_of_run(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    start_worker(spawn, env, concurrency=4)
    once = {"max_attempts": 1}
    (on_loop,) = db.submit("ledger", [{"hold": 60}], timeout=0.5, **once)
    (in_thread,) = db.submit("slow_thread", [{"hold": 60}], timeout=0.5, **once)
    # A process run's time includes starting the child (an import of the app): give it more.
    (in_process,) = db.submit("crunch", [60], timeout=3, **once)
    ids = [on_loop, in_thread, in_process]
    wait_until(lambda: db.all_terminal(ids), timeout=20)

    for job in db.jobs(ids).values():
        assert job.status is JobStatus.FAILED
        assert job.timeout is not None
        assert job.error == f"timed out after {job.timeout:g} s"
        assert job.started_at is not None and job.finished_at is not None
        assert job.finished_at - job.started_at < job.timeout + 2
    runs = crashapp.read_runs(ledger)
    assert {on_loop, in_thread, in_process} <= set(runs)
    assert (in_thread, 1, "saw-cancel") in crashapp.read_events(ledger)
    (child_pid,) = runs[in_process].pids
    wait_until(lambda: process_gone(child_pid), timeout=5)  # killed, not left burning CPU


# -- kill -9 the API server: what it acknowledged is stored ---------------------------------


def test_kill_9_api_server_loses_no_acknowledged_job(
    database_url: str, db: Db, env: dict[str, str], spawn: Spawn
) -> None:
    api = start_api(spawn, env)
    acknowledged: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def submit_stream(batch: bool) -> None:
        with httpx.Client(base_url=api.url, timeout=10) as client:
            while not stop.is_set():
                try:
                    if batch:
                        jobs = [{"task": "ledger", "payload": {}}] * 20
                        reply = client.post("/jobs/batch", json={"jobs": jobs})
                        ids = [j["id"] for j in reply.json().get("jobs", [])]
                    else:
                        reply = client.post("/jobs", json={"task": "ledger", "payload": {}})
                        ids = [reply.json().get("id")]
                except (httpx.HTTPError, ValueError):
                    return  # the server died under this request: its outcome is unknown
                with lock:
                    if reply.status_code == 201:
                        acknowledged.extend(ids)
                    else:
                        refused.append(reply.text)

    threads = [threading.Thread(target=submit_stream, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 500)
        os.kill(api.pid, signal.SIGKILL)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    assert api.popen.wait(10) == -signal.SIGKILL
    assert not refused

    restarted = start_api(spawn, env)
    with lock:
        acked = set(acknowledged)
    stored = {j.id for j in db.all_jobs()}
    assert acked <= stored, f"{len(acked - stored)} acknowledged jobs lost"
    assert len(stored) - len(acked) <= 4 * 20, "more unacknowledged jobs than were in flight"
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        for job_id in list(acked)[:50]:
            assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"
