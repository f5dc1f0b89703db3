"""Dramatiq with the Redis broker, default middleware.

Submit one: ``noop.send(i)``. Bulk: none (``group`` enqueues message by message).
Workers: one ``dramatiq`` command with ``--processes 2`` (its default is one per core) and the
default 8 threads each.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.adapters.common import bin_path, record

PACKAGE = "dramatiq"
WORKERS = "1 `dramatiq` command, 2 processes (default: one per core) x 8 threads (default)"
NO_BULK = "none: group() enqueues message by message"

broker = RedisBroker(url=os.environ.get("BENCH_DB_URL", "redis://127.0.0.1:6379/12"))
dramatiq.set_broker(broker)


@dramatiq.actor
def noop(i: int) -> None:
    record(i)


def worker_launches() -> int:
    return 1


def worker_argv(index: int) -> list[str]:
    return [bin_path("dramatiq"), "bench.adapters.dramatiq_peer", "--processes", "2"]


class Submitter:
    def open(self) -> None:
        pass

    def one(self, i: int) -> None:
        noop.send(i)

    def close(self) -> None:
        broker.close()
