"""An API server cut off from the database while clients submit and cancel through it.

API server A runs in a network namespace of its own (tests/chaos/netns.py) with two links: one
to the database (through a forwarder to PostgreSQL), one its clients use. The test cuts the
database link for longer than A's pool timeout, so A's requests cannot reach PostgreSQL while
its clients still reach A. Clients send every request to A first and, when A cannot answer for
sure (a 5xx, or no answer), again to API server B in the root namespace, a submit with the same
Idempotency-Key. Workers run in the root namespace.

A must answer promptly (503, never a hang), never 2xx for a write that did not commit (the
checker finds every acknowledged submit stored, and every acknowledged cancel held), and serve
again by itself once the link heals; the clients, failing over to B, lose nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.acceptance.test_crash import Db
from tests.chaos.clients import Clients
from tests.chaos.history import Fault
from tests.chaos.netns import Forwarder, Host, HostServer
from tests.chaos.outcome import RecordProperty, conclude
from tests.chaos.test_chaos import TIMING
from tests.conftest import Process, Server, free_port, test_env, wait_until

Spawn = Callable[..., Process]
CUT = 8.0  # seconds A is cut off: past its pool's 5 s timeout, so its requests must fail
# The longest A may take to answer, cut off or not (test_scale_out.py's outage bound): a wait on
# the store ends within 5 s (the pool's timeout, the connect timeout, TCP's user timeout), and a
# submit may wait twice, for the group commit in flight and then for its own.
PROMPT = 12.0


def through(url: str, where: Host, port: int) -> str:
    """The database URL as the host sees it: the forwarder at the root side's address."""
    parts = urlsplit(url)
    netloc = f"{parts.username}@{where.root_ip}:{port}"
    return urlunsplit(parts._replace(netloc=netloc, query="application_name=api-a"))


def test_partitioned_api_server_answers_503_and_recovers(
    pg_database_url: str,
    api_host: Host,
    spawn: Spawn,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    runs = tmp_path / "runs.jsonl"
    env = test_env(pg_database_url, JOBHANDLER_APP="chaosapp:app", CHAOSAPP_RUNS=str(runs))
    target = urlsplit(pg_database_url)
    port = free_port()
    forwarder = Forwarder((api_host.root_ip, port), (target.hostname or "", target.port or 0))
    db = Db(pg_database_url)
    api_a: HostServer | None = None
    try:
        a_env = {**env, "JOBHANDLER_DATABASE_URL": through(pg_database_url, api_host, port)}
        api_a = HostServer(api_host, ["serve", "--no-worker"], a_env, tmp_path / "api-a.log")
        api_b = spawn(["serve", "--no-worker"], env, server=True)
        assert isinstance(api_b, Server)
        api_a.wait_ready(30), api_b.wait_ready(30)
        for _ in range(2):
            spawn(["worker", "--concurrency", "4", "--shutdown-timeout", "1", *TIMING], env)
        clients = Clients(api_a.url, api_b.url)
        began = time.monotonic()
        with clients:
            wait_until(lambda: len(clients.acked) >= 20, timeout=30)
            api_host.partition()
            cut_at = time.time()
            wait_until(lambda: clients.answers_of(api_a.url, cut_at), timeout=CUT)
            time.sleep(max(0.0, cut_at + CUT - time.time()))  # the cut itself: a fault's length
            api_host.heal()
            healed_at = time.time()
            fault = Fault("partition-api", frozenset(), cut_at, healed_at)

            # By itself: nothing restarts it.
            wait_until(lambda: clients.acknowledged_by(api_a.url, healed_at), timeout=30)
        during = clients.answers_of(api_a.url, cut_at, healed_at)
        assert 503 in {a.status for a in during}, "A never answered 503 while cut off"
        assert not {a.status for a in during} - {200, 201, 503}, during
        slowest = max(a.seconds for a in clients.answers if a.server == api_a.url)
        assert slowest < PROMPT, f"A took {slowest:.1f} s to answer"
        via_b = [a for a in clients.answers_of(api_b.url, cut_at, healed_at) if a.status == 201]
        assert via_b, "no submit failed over to B while A was cut off"
        name = (
            f"API server partition on postgres (A cut off {CUT:.0f} s: {len(during)} requests"
            f" answered, {sum(a.status == 503 for a in during)} with 503, the slowest answer of A"
            f" {slowest:.1f} s; {len(via_b)} submits failed over to B)"
        )
        faults = [fault]
        conclude(name, began, clients.ops, runs, faults, db, record_property, tmp_path)
    finally:
        if api_a is not None:
            api_host.heal()
            api_a.stop()
        db.close()
        forwarder.close()
