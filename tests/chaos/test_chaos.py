"""Chaos: faults injected into real workers while clients submit, cancel and retry; then the
history checker (tests/chaos/history.py) proves nothing was lost and no stale write landed.

One API server and three worker processes with a short lease share a store. Client threads
submit jobs of ``chaosapp:step`` (tests/apps/chaosapp.py, which logs every run), cancel some
while they wait and some while they run, read them, and retry the failed and cancelled ones.
Meanwhile the test injects, in turn: ``kill -9`` of a worker (restarted after); ``SIGSTOP`` of
a worker for twice its lease, then ``SIGCONT``; on PostgreSQL, the workers' connections killed
(``pg_terminate_backend``); then all of them at once. Then the clients stop, the jobs drain,
the final state is read, and the checker's summary is printed in pytest's terminal summary
(tests/chaos/outcome.py).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

from tests.acceptance.test_crash import Db, db, pause
from tests.chaos.clients import Clients
from tests.chaos.history import Fault
from tests.chaos.outcome import RecordProperty, conclude, read_runs
from tests.conftest import Process, Server, test_env, wait_until
from tests.faketime import skewed

__all__ = ["db"]  # the crash tests' store fixture, shared

LEASE = 5.0
TIMING = ["--lease", str(LEASE), "--heartbeat-interval", "0.5", "--rescue-interval", "0.5"]
WORKERS = 3
PG_APP_NAME = "chaos-worker"  # the workers' connections, told apart from the API server's
Spawn = Callable[..., Process]


class Cluster:
    """The worker processes, and the faults injected into them (each logged as a ``Fault``).

    ``plain`` workers with the host's clock, then one per ``clocks``, with its clock that many
    seconds off the host's (tests/faketime.py)."""

    def __init__(
        self,
        spawn: Spawn,
        env: dict[str, str],
        worker_env: dict[str, str],
        runs: Path,
        db: Db,
        plain: int = WORKERS,
        clocks: Sequence[int] = (),
    ) -> None:
        self.spawn, self.env, self.worker_env, self.runs, self.db = spawn, env, worker_env, runs, db
        self.workers = [self.start_worker() for _ in range(plain)]
        self.workers += [self.start_worker(skewed(worker_env, seconds)) for seconds in clocks]
        self.faults: list[Fault] = []

    def start_worker(self, env: dict[str, str] | None = None) -> Process:
        args = ["worker", "--concurrency", "4", "--shutdown-timeout", "1", *TIMING]
        return self.spawn(args, env or self.worker_env)

    def busy(self, worker: Process) -> str:
        """Wait until ``worker`` runs a job (its run started, not ended); that job's id."""
        found: list[str] = []

        def running() -> bool:
            assert worker.popen.poll() is None, worker.output()
            found[:] = [
                r.job_id
                for r in read_runs(self.runs)
                if r.worker == str(worker.pid) and not r.ended
            ]
            return bool(found)

        wait_until(running, timeout=20)
        return found[-1]

    def kill_9(self, index: int) -> None:
        worker = self.workers[index]
        self.busy(worker)
        os.kill(worker.pid, signal.SIGKILL)
        worker.popen.wait(10)
        now = time.time()
        self.faults.append(Fault("kill-9", frozenset({str(worker.pid)}), now, now))
        self.workers[index] = self.start_worker()

    def freeze(self, index: int) -> Callable[[], None]:
        """SIGSTOP the worker while it runs a job (holding no lock); the returned call resumes."""
        worker = self.workers[index]
        pause(worker, self.db, self.busy(worker))
        started = time.time()

        def thaw() -> None:
            os.kill(worker.pid, signal.SIGCONT)
            self.faults.append(Fault("sigstop", frozenset({str(worker.pid)}), started, time.time()))

        return thaw

    def cut_connections(self) -> None:
        with psycopg.connect(self.db.url, autocommit=True) as conn:
            (killed,) = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (PG_APP_NAME,),
            ).fetchone() or (0,)
        assert killed, "no worker connection to terminate"
        now = time.time()
        pids = frozenset(str(w.pid) for w in self.workers)
        self.faults.append(Fault("pg-terminate", pids, now, now))

    def inject(self, postgres: bool) -> None:
        """Each fault alone, then all at once. The sleeps are the freezes themselves."""
        self.kill_9(0)
        thaw = self.freeze(1)
        time.sleep(2 * LEASE)
        thaw()
        if postgres:
            self.cut_connections()
        thaw = self.freeze(2)
        self.kill_9(0)
        if postgres:
            self.cut_connections()
        time.sleep(2 * LEASE)
        thaw()
        self.all_serving(since=time.time())

    def all_serving(self, since: float, timeout: float = 30) -> None:
        """Every worker (the resumed, the reconnected, the restarted) starts runs again: none
        stopped silently after its fault (celery#8030). The clients are still submitting."""

        def serving() -> bool:
            ran = {r.worker for r in read_runs(self.runs) if r.started > since}
            return {str(w.pid) for w in self.workers} <= ran

        wait_until(serving, timeout=timeout, interval=0.2)


def test_chaos_history_checks_out(
    database_url: str, db: Db, spawn: Spawn, tmp_path: Path, record_property: RecordProperty
) -> None:
    postgres = database_url.startswith("postgresql://")
    runs = tmp_path / "runs.jsonl"
    env = test_env(database_url, JOBHANDLER_APP="chaosapp:app", CHAOSAPP_RUNS=str(runs))
    worker_url = f"{database_url}?application_name={PG_APP_NAME}" if postgres else database_url
    worker_env = {**env, "JOBHANDLER_DATABASE_URL": worker_url}
    api = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(api, Server)
    api.wait_ready(30)
    cluster = Cluster(spawn, env, worker_env, runs, db)
    clients = Clients(api.url)
    started = time.monotonic()
    with clients:
        cluster.inject(postgres)
    store = "postgres" if postgres else "sqlite"
    ops, faults = clients.ops, cluster.faults
    summary = conclude(
        f"chaos on {store}", started, ops, runs, faults, db, record_property, tmp_path
    )
    assert summary.jobs > 50 and summary.faults
