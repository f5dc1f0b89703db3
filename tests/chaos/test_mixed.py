"""Every fault in one run, overlapping, while clients submit, cancel and retry.

PostgreSQL is the test's own server (tests/chaos/private_pg.py), so it may be restarted. Host H
is a network namespace with two links (tests/chaos/netns.py): API server A and worker W run in
it, and reach the database through a forwarder over the link a partition cuts; clients reach A
over the other. API server B and four workers run in the root namespace: two for the kill
and the freeze, and two with their clocks 30 s ahead and 30 s behind the host's and the
database's (under libfaketime, tests/faketime.py). Clients send each request to A first and
fail over to B (tests/chaos/clients.py); some of their jobs are due 3 s after they are
submitted.

While jobs run, the test freezes a worker (``SIGSTOP``) and cuts host H off the database (API
server and worker at once, as a host's cable), both for twice the lease; meanwhile it kills a
worker with ``kill -9``, terminates the workers' connections, and restarts PostgreSQL. Then it
heals and thaws, waits until A and every worker (W, the thawed, the replacement) serve again by
themselves, drains, and the checker proves nothing was lost and every duplicate run is
explained by a fault (so no lease was judged on a wrong clock), and that no run started before
its job's ``run_at`` (tests/chaos/clocks.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_crash import Db
from tests.chaos.clients import Clients
from tests.chaos.history import Fault
from tests.chaos.netns import Forwarder, Host, HostProcess, HostServer
from tests.chaos.outcome import RecordProperty, conclude, read_runs
from tests.chaos.private_pg import PrivatePostgres
from tests.chaos.test_api_partition import PROMPT, through
from tests.chaos.test_chaos import LEASE, PG_APP_NAME, TIMING, Cluster
from tests.chaos.test_partition import cut
from tests.conftest import Process, Server, free_port, test_env, wait_until
from tests.faketime import LIBFAKETIME, WITHOUT_LIBFAKETIME

pytestmark = pytest.mark.skipif(LIBFAKETIME is None, reason=WITHOUT_LIBFAKETIME)

Spawn = Callable[..., Process]
# A's answers may take longer than test_api_partition.py's bound here: PostgreSQL restarts while
# A is cut off, so a submit can wait for the group commit in flight (5 s), for a connection
# (5 s) and then for a server that is still starting. Still an answer, never a hang.
BOUNDED = 2 * PROMPT
ON_HOST_QUEUE = "host-w"  # served by worker W alone
SKEWED_CLOCKS = (30, -30)  # seconds off the host's clock, one worker each, after two plain ones


class Faults:
    """The faults of the mixed run, each logged as a ``Fault`` for the checker."""

    def __init__(self, cluster: Cluster, pg: PrivatePostgres, where: Host, on_host: Process):
        self.cluster, self.pg, self.where, self.on_host = cluster, pg, where, on_host
        self.restart_took = 0.0

    def every_worker(self) -> frozenset[str]:
        return frozenset({str(self.on_host.pid), *(str(w.pid) for w in self.cluster.workers)})

    def long_run_on_host(self, clients: Clients, url: str) -> str:
        """A job that worker W runs and that lasts past the partition's start: W's lease then
        expires while it is cut off, as in test_partition.py. Submitted through B to a queue
        only W serves: on the shared queue, W (slower to claim, through its forwarder) once took
        none of 20 such jobs from the four other workers."""
        long = {
            "task": "step",
            "queue": ON_HOST_QUEUE,
            "payload": {"hold": 3.0, "retry_hold": 0.1},
            "max_attempts": 10,
        }
        with httpx.Client(base_url=url, timeout=30) as http:
            job_id = clients.submit([http], long)

        def on_host() -> bool:
            return any(
                r.job_id == job_id and r.worker == str(self.on_host.pid) and not r.ended
                for r in read_runs(self.cluster.runs)
            )

        wait_until(on_host, timeout=20)
        return job_id

    def inject(self, db: Db, long_on_host: str) -> tuple[list[Fault], float]:
        """All of them, overlapping; returns the faults and when the host was healed."""
        cluster = self.cluster
        thaw = cluster.freeze(1)
        cut(self.where, db, long_on_host)
        cut_at = time.time()
        cluster.kill_9(0)
        cluster.cut_connections()
        began = time.time()
        down = self.pg.restart("fast")
        self.restart_took = down
        restarted = Fault("pg-restart fast", self.every_worker(), began, time.time())
        time.sleep(max(0.0, cut_at + 2 * LEASE - time.time()))  # the cut and the freeze last
        self.where.heal()
        thaw()
        healed_at = time.time()
        host = Fault(
            "partition-host (API A, worker W)",
            frozenset({str(self.on_host.pid)}),
            cut_at,
            healed_at,
        )
        return [*cluster.faults, restarted, host], healed_at


def start_host(
    where: Host, env: dict[str, str], folder: Path, started: list[Process]
) -> tuple[HostServer, HostProcess]:
    """API server A and worker W on host H, both added to ``started``."""
    api_a = HostServer(where, ["serve", "--no-worker"], env, folder / "api-a.log")
    started.append(api_a)
    worker_args = ["worker", "--concurrency", "4", "--shutdown-timeout", "1", *TIMING]
    worker_args += ["--queues", f"default,{ON_HOST_QUEUE}"]
    worker_w = HostProcess(where, worker_args, env, folder / "worker-w.log")
    started.append(worker_w)
    return api_a, worker_w


def test_every_fault_at_once_loses_nothing(
    private_pg: PrivatePostgres,
    api_host: Host,
    spawn: Spawn,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    runs = tmp_path / "runs.jsonl"
    env = test_env(private_pg.url, JOBHANDLER_APP="chaosapp:app", CHAOSAPP_RUNS=str(runs))
    port = free_port()
    forwarder = Forwarder((api_host.root_ip, port), ("127.0.0.1", private_pg.port))
    db = Db(private_pg.url)
    on_host: list[Process] = []
    try:
        host_env = {**env, "JOBHANDLER_DATABASE_URL": through(private_pg.url, api_host, port)}
        api_a, worker_w = start_host(api_host, host_env, tmp_path, on_host)
        api_b = spawn(["serve", "--no-worker"], env, server=True)
        assert isinstance(api_b, Server)
        api_a.wait_ready(30), api_b.wait_ready(30)
        worker_url = f"{private_pg.url}?application_name={PG_APP_NAME}"
        worker_env = {**env, "JOBHANDLER_DATABASE_URL": worker_url}
        cluster = Cluster(spawn, env, worker_env, runs, db, 2, SKEWED_CLOCKS)
        faults = Faults(cluster, private_pg, api_host, worker_w)
        clients = Clients(api_a.url, api_b.url)
        began = time.monotonic()
        with clients:
            # Every worker past its start (test_pg_restart.py). Five processes start at once
            # here, which takes over 30 s on a loaded machine (seen beside a soak).
            cluster.all_serving(since=0, timeout=60)
            injected, healed_at = faults.inject(db, faults.long_run_on_host(clients, api_b.url))
            # A and every worker serve again by themselves: nothing restarts them.
            wait_until(lambda: clients.acknowledged_by(api_a.url, healed_at), timeout=30)
            cluster.workers.append(worker_w)  # W too; no fault is injected after this
            cluster.all_serving(since=healed_at)
        slowest = max(a.seconds for a in clients.answers if a.server == api_a.url)
        name = (
            f"every fault at once on postgres (PostgreSQL down {faults.restart_took:.1f} s;"
            f" the slowest answer of A {slowest:.1f} s)"
        )
        summary = conclude(name, began, clients.ops, runs, injected, db, record_property, tmp_path)
        slow = [
            (a.status, round(a.seconds, 1), round(a.at - a.seconds - healed_at, 1))
            for a in clients.answers_of(api_a.url, 0)
            if a.seconds >= BOUNDED
        ]
        assert not slow, f"A answered slowly (status, seconds, began since the heal): {slow}"
        assert summary.jobs > 50
        assert {"kill-9", "sigstop", "pg-terminate"} <= set(summary.faults)
        assert summary.duplicates["lease expired after partition-host (API A, worker W)"] >= 1
        # Both skewed workers ran jobs: checked leases, judged some due (all_serving too).
        assert {offset for _, offset in summary.clocks.skewed_runs} == set(SKEWED_CLOCKS)
        assert summary.clocks.delayed > 0
    finally:
        api_host.heal()
        for proc in on_host:
            proc.stop()
        db.close()
        forwarder.close()
