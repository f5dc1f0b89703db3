"""Chaos: faults injected into real workers while clients submit, cancel and retry; then the
history checker (tests/chaos/history.py) proves nothing was lost and no stale write landed.

One API server and three worker processes with a short lease share a store. Client threads
submit jobs of ``chaosapp:step`` (tests/apps/chaosapp.py, which logs every run), cancel some
while they wait and some while they run, read them, and retry the failed and cancelled ones.
Meanwhile the test injects, in turn: ``kill -9`` of a worker (restarted after); ``SIGSTOP`` of
a worker for twice its lease, then ``SIGCONT``; on PostgreSQL, the workers' connections killed
(``pg_terminate_backend``); then all of them at once. Then the clients stop, the jobs drain,
the final state is read over the API, and the checker's summary is printed and logged.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from jobhandler import JobStatus
from tests.acceptance.test_crash import Db, db, pause
from tests.chaos.history import AttemptRecord, Fault, FinalJob, History, Op, Run, check
from tests.conftest import Process, Server, test_env, wait_until

__all__ = ["db"]  # the crash tests' store fixture, shared

LEASE = 5.0
TIMING = ["--lease", str(LEASE), "--heartbeat-interval", "0.5", "--rescue-interval", "0.5"]
WORKERS = 3
PG_APP_NAME = "chaos-worker"  # the workers' connections, told apart from the API server's
log = logging.getLogger(__name__)
Spawn = Callable[..., Process]


class Clients:
    """Client threads against the API; every request is logged as an ``Op`` of the history."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ops: list[Op] = []
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._submit_loop, args=(seed,)) for seed in range(2)
        ] + [threading.Thread(target=self._meddle_loop, args=(seed,)) for seed in range(2)]

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def call(
        self, client: httpx.Client, kind: Any, job_id: str | None, method: str, path: str, **kw: Any
    ) -> Op:
        invoked = time.time()
        try:
            reply = client.request(method, path, **kw)
        except httpx.HTTPError:
            op = Op(kind, job_id, invoked, time.time(), None)
        else:
            body = reply.json() if reply.is_success else {}
            ok = True if reply.is_success else (False if reply.status_code < 500 else None)
            job_id = job_id or body.get("id")
            op = Op(kind, job_id, invoked, time.time(), ok, body.get("status"), body.get("attempt"))
        with self.lock:
            self.ops.append(op)
        return op

    def submit(self, client: httpx.Client, job: dict[str, Any]) -> None:
        """Submit until acknowledged: the same Idempotency-Key makes a repeat safe."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        invoked = time.time()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            op = self.call(client, "submit", None, "POST", "/jobs", json=job, headers=headers)
            if op.ok:
                with self.lock:  # one acknowledged submit, from its first try to its answer
                    self.ops[self.ops.index(op)] = Op(
                        "submit", op.job_id, invoked, op.completed, True, op.status, op.attempt
                    )
                    self.acked.append(str(op.job_id))
                if job.get("delay"):  # cancelled while it waits: it must never run
                    self.call(client, "cancel", op.job_id, "POST", f"/jobs/{op.job_id}/cancel")
                return
            assert op.ok is None, f"submit refused: {job}"
        raise AssertionError("a submit was not acknowledged within 30 s")

    def _submit_loop(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                kind = rng.random()
                job: dict[str, Any] = {"task": "step", "max_attempts": 10}
                job["payload"] = {"hold": round(rng.uniform(0.05, 1.5), 2)}
                if kind < 0.15:  # fails once: retried by itself, or failed and by its user
                    tries = rng.choice([1, 10])
                    job.update(max_attempts=tries, payload={"hold": 0.05, "fail_first": True})
                elif kind < 0.3:
                    job["delay"] = 5
                self.submit(client, job)
                self.stop.wait(0.1)  # a steady rate, not a flood: the faults are the point

    def _meddle_loop(self, seed: int) -> None:
        """Read random jobs; retry those failed or cancelled, cancel some of those running."""
        rng = random.Random(100 + seed)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.wait(0.05):
                with self.lock:
                    if not self.acked:
                        continue
                    job_id = rng.choice(self.acked)
                seen = self.call(client, "read", job_id, "GET", f"/jobs/{job_id}")
                if seen.status in ("failed", "cancelled") and rng.random() < 0.5:
                    self.call(client, "retry", job_id, "POST", f"/jobs/{job_id}/retry")
                elif seen.status == "processing" and rng.random() < 0.1:
                    self.call(client, "cancel", job_id, "POST", f"/jobs/{job_id}/cancel")


def read_runs(path: Path) -> list[Run]:
    starts: dict[str, dict[str, Any]] = {}
    ends: dict[str, float] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        entry = json.loads(line)
        if entry["event"] == "start":
            starts[entry["token"]] = entry
        else:
            ends[entry["token"]] = entry["at"]
    return [
        Run(s["job"], s["attempt"], s["worker"], token, s["at"], ends.get(token))
        for token, s in starts.items()
    ]


class Cluster:
    """The worker processes, and the faults injected into them (each logged as a ``Fault``)."""

    def __init__(
        self, spawn: Spawn, env: dict[str, str], worker_env: dict[str, str], runs: Path, db: Db
    ) -> None:
        self.spawn, self.env, self.worker_env, self.runs, self.db = spawn, env, worker_env, runs, db
        self.workers = [self.start_worker() for _ in range(WORKERS)]
        self.faults: list[Fault] = []

    def start_worker(self) -> Process:
        args = ["worker", "--concurrency", "4", "--shutdown-timeout", "1", *TIMING]
        return self.spawn(args, self.worker_env)

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

    def all_serving(self, since: float) -> None:
        """Every worker (the resumed, the reconnected, the restarted) starts runs again: none
        stopped silently after its fault (celery#8030). The clients are still submitting."""

        def serving() -> bool:
            ran = {r.worker for r in read_runs(self.runs) if r.started > since}
            return {str(w.pid) for w in self.workers} <= ran

        wait_until(serving, timeout=30, interval=0.2)


def final_state(db: Db, ids: list[str]) -> dict[str, FinalJob]:
    """Each job as stored, with its attempts, read through the Python API (one HTTP request
    per job would take longer than the chaos itself on a loaded machine)."""
    final: dict[str, FinalJob] = {}
    for job_id in ids:
        job = db.job(job_id)
        attempts = [
            AttemptRecord(a.attempt, a.outcome, a.error, a.after_user_retry)
            for a in db.run(db.app.service.jobs.attempts(job_id))
        ]
        final[job_id] = FinalJob(job_id, job.status, job.attempt, job.result, attempts)
    return final


def test_chaos_history_checks_out(database_url: str, db: Db, spawn: Spawn, tmp_path: Path) -> None:
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
    acked = list(clients.acked)

    def drained() -> bool:
        return not any(n for status, n in db.counts().items() if not JobStatus(status).terminal)

    wait_until(drained, timeout=40, interval=0.2)
    history = History(clients.ops, read_runs(runs), cluster.faults, final_state(db, acked))
    summary, violations = check(history)
    store = "postgres" if postgres else "sqlite"
    report = f"chaos on {store} ({time.monotonic() - started:.0f} s): {summary}"
    print(f"\n{report}")
    log.warning(report)
    (tmp_path / "checker-summary.txt").write_text(report + "\n" + "\n".join(violations))
    assert summary.jobs > 50 and summary.faults
    assert not violations, "\n".join(violations[:30])
