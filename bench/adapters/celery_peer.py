"""Celery with the Redis broker, default settings (no result backend configured).

Submit one: ``noop.delay(i)``. Bulk: none (``group(...).apply_async()`` publishes one message
per task, it is a workflow primitive, not a batch insert). Workers: one ``celery worker`` with
the default prefork pool, ``--concurrency 2`` (the default: one child per core).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from bench.adapters.common import bin_path, record

PACKAGE = "celery"
WORKERS = "1 `celery worker`, prefork pool, 2 child processes (the default: one per core)"
NO_BULK = "none: group() publishes one message per task"

app = Celery("bench", broker=os.environ.get("BENCH_DB_URL", "redis://127.0.0.1:6379/12"))
app.conf.broker_connection_retry_on_startup = True


@app.task(name="noop")
def noop(i: int) -> None:
    record(i)


def worker_launches() -> int:
    return 1


def worker_argv(index: int) -> list[str]:
    return worker_command("bench.adapters.celery_peer", f"bench{index}@%h")


def worker_command(module: str, hostname: str) -> list[str]:
    """One ``celery worker`` of ``module``'s app, as every Celery adapter here runs it."""
    return [
        bin_path("celery"),
        "-A",
        module,
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "2",
        "--loglevel",
        "WARNING",
        "--hostname",
        hostname,
    ]


class Submitter:
    celery: Celery = app
    task: Any = noop

    def open(self) -> None:
        pass

    def one(self, i: int) -> None:
        self.task.delay(i)

    def close(self) -> None:
        self.celery.close()
