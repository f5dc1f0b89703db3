"""A worker host cut off from the database for longer than its lease, then healed.

Host A is a network namespace of its own (tests/chaos/netns.py) whose worker reaches
PostgreSQL over a veth pair. While it runs a job, the test cuts the link (packets dropped, no
answer, as on a pulled cable). A's lease expires; a worker in the root namespace rescues the
job and completes attempt 2. Then the link heals: A's run of attempt 1 has returned meanwhile,
and its write (its connection dropped by the TCP user timeout, the write retried once
healed) must be fenced. The history checker proves it (the
result is attempt 2's, the duplicate is explained by the partition), and A serves again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from jobhandler import JobStatus
from tests.acceptance.test_crash import Db
from tests.chaos.history import Fault, History, Op
from tests.chaos.netns import Forwarder, Host, HostProcess, host, require_root_and_ip
from tests.chaos.outcome import RecordProperty, conclude, read_runs
from tests.chaos.test_chaos import TIMING
from tests.conftest import Process, Server, free_port, test_env, wait_until

Spawn = Callable[..., Process]


@pytest.fixture
def cut_off_host() -> Iterator[Host]:
    require_root_and_ip()
    with host() as made:
        yield made


def through(url: str, where: Host, port: int) -> str:
    """The database URL as the host sees it: the forwarder at the root side's address."""
    parts = urlsplit(url)
    netloc = f"{parts.username}@{where.root_ip}:{port}"
    return urlunsplit(parts._replace(netloc=netloc, query="application_name=host-a"))


def cut(where: Host, db: Db, job_id: str) -> None:
    """Partition the host at a moment it holds no lock on the job (as ``pause`` does): a
    lock held across the partition would stop the rescue too, until TCP gave up."""
    for _ in range(50):
        where.partition()
        if db.store_is_free(job_id):
            return
        where.heal()
    raise AssertionError("the host never let go of the job's row")


def test_partitioned_worker_is_fenced_when_it_heals(
    pg_database_url: str,
    cut_off_host: Host,
    spawn: Spawn,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    runs = tmp_path / "runs.jsonl"
    env = test_env(pg_database_url, JOBHANDLER_APP="chaosapp:app", CHAOSAPP_RUNS=str(runs))
    target = urlsplit(pg_database_url)
    port = free_port()
    forwarder = Forwarder((cut_off_host.root_ip, port), (target.hostname or "", target.port or 0))
    db = Db(pg_database_url)
    worker_args = ["worker", "--concurrency", "2", "--shutdown-timeout", "1", *TIMING]
    host_a: Process | None = None
    try:
        api = spawn(["serve", "--no-worker"], env, server=True)
        assert isinstance(api, Server)
        api.wait_ready(30)
        host_env = {**env, "JOBHANDLER_DATABASE_URL": through(pg_database_url, cut_off_host, port)}
        host_a = HostProcess(cut_off_host, worker_args, host_env, tmp_path / "host-a.log")
        history, began = History(), time.monotonic()

        def submit(payload: dict[str, float]) -> str:
            invoked = time.time()
            reply = httpx.post(f"{api.url}/jobs", json={"task": "step", "payload": payload})
            assert reply.status_code == 201, reply.text
            job = reply.json()
            history.ops.append(Op("submit", job["id"], invoked, time.time(), True, "queued", 0))
            return str(job["id"])

        job_id = submit({"hold": 2.0, "retry_hold": 0.1})
        wait_until(lambda: any(r.job_id == job_id for r in read_runs(runs)), timeout=30)
        (first,) = read_runs(runs)
        assert first.worker == str(host_a.pid), "host A's worker should run it"

        cut(cut_off_host, db, job_id)
        cut_at = time.time()
        rescuer = spawn(worker_args, env)
        wait_until(lambda: db.job(job_id).status is JobStatus.COMPLETED, timeout=30)
        done = db.job(job_id)
        cut_off_host.heal()
        history.faults.append(Fault("partition", frozenset({first.worker}), cut_at, time.time()))

        wait_until(lambda: f"lease lost on job {job_id} (attempt 1)" in host_a.output(), 30)
        assert db.job(job_id) == done, "host A's late write changed the job"
        assert done.attempt == 2 and done.result["attempt"] == 2

        # Host A serves again once healed: with the rescuer gone, it runs the next job.
        rescuer.stop()
        after = submit({"hold": 0.0})
        wait_until(lambda: db.job(after).status is JobStatus.COMPLETED, timeout=30)
        assert [r.worker for r in read_runs(runs) if r.job_id == after] == [str(host_a.pid)]

        name, ops, faults = "worker partition on postgres", history.ops, history.faults
        summary = conclude(name, began, ops, runs, faults, db, record_property, tmp_path)
        assert dict(summary.duplicates) == {"lease expired after partition": 1}
        assert summary.fenced_returns == 1, "host A's run of attempt 1 should have returned"
    finally:
        if host_a is not None:  # before its namespace goes, whatever failed
            cut_off_host.heal()  # a worker cut off would spend its shutdown retrying
            host_a.stop()
        db.close()
        forwarder.close()
