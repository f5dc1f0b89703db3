"""Maintenance runs on one elected worker at a time; another takes over when it dies.

Real ``jobhandler worker`` processes on both stores: find the leader by its log line, kill -9
it while it holds jobs, and see another worker take the lease within one lease and rescue the
dead leader's jobs. A graceful stop hands the lease over at once, without waiting it out.
"""

from __future__ import annotations

import os
import re
import signal
import time

from jobhandler import JobStatus
from tests.acceptance import test_crash
from tests.acceptance.test_crash import LEASE, Db, Spawn, crashapp, start_worker
from tests.conftest import Process, wait_until

# The crash tests' fixtures: the store through the workers' App, a run ledger, their env.
db, env, ledger = test_crash.db, test_crash.env, test_crash.ledger

LEADS = re.compile(r"worker (\S+) leads maintenance")


def leaders(workers: list[Process]) -> dict[str, Process]:
    """Every worker that has logged a win so far, by the id it logged."""
    found: dict[str, Process] = {}
    for worker in workers:
        for worker_id in LEADS.findall(worker.output()):
            found[worker_id] = worker
    return found


def only_leader(workers: list[Process]) -> tuple[str, Process]:
    wait_until(lambda: leaders(workers), timeout=30)
    found = leaders(workers)
    assert len(found) == 1, f"more than one leader: {sorted(found)}"
    ((leader_id, leader),) = found.items()
    return leader_id, leader


def test_kill_9_leader_another_takes_over_within_a_lease_and_rescues(
    db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    workers = [start_worker(spawn, env, concurrency=4) for _ in range(3)]
    for worker in workers:
        db.worker_id(worker)
    leader_id, leader = only_leader(workers)
    ids = db.submit("ledger", [{"hold": 3.0, "retry_hold": 0.0}] * 12)

    def leader_busy() -> bool:
        held = {j.id for j in db.running_under(leader_id)}
        return bool(held) and held <= set(crashapp.read_runs(ledger))

    wait_until(leader_busy)
    orphans = {j.id for j in db.running_under(leader_id)}

    os.kill(leader.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert leader.popen.wait(10) == -signal.SIGKILL
    others = [w for w in workers if w is not leader]
    wait_until(lambda: leaders(others), timeout=3 * LEASE)
    took_over_after = time.monotonic() - killed_at
    # The dead leader renewed at most ttl/3 before dying; candidates ask every rescue
    # interval (0.5 s); the rest is this test's polling on a busy machine.
    assert took_over_after <= LEASE + 1.5, f"no new leader for {took_over_after:.1f}s"
    assert len(leaders(others)) == 1

    wait_until(lambda: db.all_terminal(ids), timeout=30)
    jobs = db.jobs(ids)
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    runs = crashapp.read_runs(ledger)
    for job_id in orphans:
        assert jobs[job_id].attempt == 2 and jobs[job_id].worker_id != leader_id
        assert runs[job_id].attempts == [1, 2]


def test_graceful_stop_hands_the_lease_over_at_once(
    db: Db, env: dict[str, str], spawn: Spawn
) -> None:
    long_lease = {**env, "JOBHANDLER_LEASE": "60"}
    args = ["worker", "--rescue-interval", "0.5", "--heartbeat-interval", "5"]
    workers = [spawn(args, long_lease) for _ in range(2)]
    for worker in workers:
        db.worker_id(worker)
    _, leader = only_leader(workers)
    stopped_at = time.monotonic()
    assert leader.stop() == 0
    assert "resigned from maintenance" in leader.output()
    (other,) = [w for w in workers if w is not leader]
    wait_until(lambda: leaders([other]), timeout=10)
    assert time.monotonic() - stopped_at < 10, "the next leader waited out the 60 s lease"
