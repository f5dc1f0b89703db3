"""Celery's chord on Redis (broker and result backend), default settings otherwise: the peer
of the workflow workload. A chord needs a result backend (it counts the header's results there),
so this is a module of its own: celery_peer has none, as Celery runs by default.

The fan-out/fan-in: ``chain(noop.si(n + 1), group(noop.si(i) for i in range(n)), noop.si(n))``,
which Celery turns into the root, then a chord of the N with the child as its callback (the
Redis backend counts the header's results in Redis: no chord_unlock polling task). Workers: as
celery_peer, one ``celery worker``, prefork pool, 2 child processes.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, chain, group

from bench.adapters import celery_peer
from bench.adapters.celery_peer import worker_command
from bench.adapters.common import record

PACKAGE = "celery"
WORKERS = "1 `celery worker`, prefork pool, 2 child processes (the default: one per core)"
NO_BULK = "none: group() publishes one message per task"

_URL = os.environ.get("BENCH_DB_URL", "redis://127.0.0.1:6379/12")
app = Celery("bench_chord", broker=_URL, backend=_URL)
app.conf.broker_connection_retry_on_startup = True


@app.task(name="noop")
def noop(i: int) -> None:
    record(i)


def worker_launches() -> int:
    return 1


def worker_argv(index: int) -> list[str]:
    return worker_command("bench.adapters.celery_chord_peer", f"chord{index}@%h")


def submit_workflow(n: int) -> dict[str, Any]:
    canvas = chain(noop.si(n + 1), group(noop.si(i) for i in range(n)), noop.si(n))
    result = canvas.apply_async()
    return {"workflow_id": result.id, "jobs": n + 2}


class Submitter(celery_peer.Submitter):
    celery = app
    task = noop
