"""How many jobs run again after a kill -9, at the concurrency a worker runs by default.

Two workers (100 runs at a time each, the default) drain 1,000 jobs of 50 ms; one is killed
with ``kill -9`` in the middle. Every job the dead worker held runs again, as at-least-once
allows: the runs it had going (in flight), and the runs that had ended but whose outcome was not
written yet (finished). A worker claims nothing while its unwritten outcomes are more than its
concurrency, so the two together never pass twice the concurrency, however slow the writes
(docs/reliability.md, "Few jobs run again"). How many finished jobs run again depends on the
moment of the kill and on how long a write takes on the machine: the test prints it.

The ``tick`` task traces each run's start and end in a file of the worker's own
(tests/apps/crashapp.py), so the count does not depend on when the test looks: after the kill,
the dead worker's file says which of its runs had ended. A job it claimed but never started is
in no file of its: it runs once, on the survivor, and counts as nothing here.
"""

from __future__ import annotations

import os
import random
import signal
import time

from tests.acceptance.test_crash import TIMING, Db, Spawn, crashapp, db, env, ledger
from tests.conftest import wait_until

__all__ = ["db", "env", "ledger"]  # the crash tests' fixtures, shared

JOBS = 1000
HOLD = 0.05
CONCURRENCY = 100  # the default (settings.py): the test passes no --concurrency
# Out of about 500 a worker takes: the kill lands in the steady drain, not its start or end.
KILL_AFTER_STARTS = 150


def test_kill_9_at_default_concurrency_reruns_at_most_twice_concurrency_jobs(
    db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    args = ["worker", "--shutdown-timeout", "1", *TIMING]
    victim, survivor = spawn(args, env), spawn(args, env)
    db.worker_id(victim)
    db.worker_id(survivor)
    db.submit("tick", [{"hold": HOLD}] * JOBS)

    def victim_busy() -> bool:
        trace = crashapp.read_traces(ledger).get(victim.pid)
        return trace is not None and len(trace.started) >= KILL_AFTER_STARTS

    wait_until(victim_busy, interval=0.005)
    # Runs started together end together: killing on a count of starts would hit one phase
    # of that cycle every time. Not a wait for anything: a moment of the cycle, at random.
    time.sleep(random.uniform(0, 2 * HOLD))
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.popen.wait(10) == -signal.SIGKILL
    wait_until(lambda: db.counts() == {"completed": JOBS}, timeout=60, interval=0.1)

    traces = crashapp.read_traces(ledger)
    dead = traces.pop(victim.pid)
    started_after = [job for trace in traces.values() for job in trace.started]
    in_flight = set(dead.started) - dead.ended
    finished_again = dead.ended & set(started_after)
    print(
        f"kill -9 at {len(dead.started)} starts: {len(in_flight)} in flight, "
        f"{len(finished_again)} finished jobs ran again"
    )
    assert len(started_after) == len(set(started_after)), "the survivor ran a job twice"
    assert len(set(dead.started) | set(started_after)) == JOBS, "a job never ran"
    assert in_flight <= set(started_after), "a run cut short by the kill never ran again"
    assert len(in_flight) + len(finished_again) <= 2 * CONCURRENCY, (
        f"{len(in_flight)} in flight and {len(finished_again)} finished jobs ran again"
    )
