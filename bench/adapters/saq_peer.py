"""SAQ on Redis, default settings (concurrency 10 per worker process).

Submit one: ``await queue.enqueue("noop", i=i)``. Bulk: none (``queue.map`` enqueues one by
one and waits for results). Workers: one ``saq`` command with ``--workers 2``.
"""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from bench.adapters.common import bin_path, record

PACKAGE = "saq"
WORKERS = "1 `saq --workers 2` (2 processes, default concurrency 10 each)"
NO_BULK = "none: queue.map() enqueues one by one and waits for the results"

queue = Queue.from_url(os.environ.get("BENCH_DB_URL", "redis://127.0.0.1:6379/12"))


async def noop(ctx: Any, *, i: int) -> None:
    record(i)


settings = {"queue": queue, "functions": [noop]}


def worker_launches() -> int:
    return 1


def worker_argv(index: int) -> list[str]:
    return [bin_path("saq"), "bench.adapters.saq_peer.settings", "--workers", "2", "--quiet"]


class Submitter:
    async def open(self) -> None:
        await queue.connect()

    async def one(self, i: int) -> None:
        await queue.enqueue("noop", i=i)

    async def close(self) -> None:
        await queue.disconnect()
