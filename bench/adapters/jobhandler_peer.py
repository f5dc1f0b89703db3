"""Job Handler (ours), through its public Python API, on SQLite or PostgreSQL.

Submit one: ``await noop.enqueue(i)``. Bulk: ``await noop.enqueue_many(items)`` (1,000 per call).
Workers: 2 ``jobhandler worker`` processes with their default concurrency.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from bench.adapters.common import bin_path, env, record
from jobhandler import App
from jobhandler.settings import Settings

PACKAGE = "jobhandler"
WORKERS = "2 `jobhandler worker` processes, default concurrency"

app = App()


@app.task
async def noop(i: int) -> None:
    record(i)


def settings() -> Settings:
    # The workers read JOBHANDLER_SQLITE_SYNCHRONOUS themselves; the submitter is told here.
    level = os.environ.get("JOBHANDLER_SQLITE_SYNCHRONOUS", "FULL")
    return Settings.model_validate(
        {
            "database_url": env("BENCH_DB_URL"),
            "app": "bench.adapters.jobhandler_peer:app",
            "sqlite_synchronous": level,
        }
    )


def worker_launches() -> int:
    return 2


def worker_argv(index: int) -> list[str]:
    return [
        bin_path("jobhandler"),
        "worker",
        "--app",
        "bench.adapters.jobhandler_peer:app",
        "--database",
        env("BENCH_DB_URL"),
        "--log-level",
        "warning",
    ]


async def setup() -> None:
    async with app.connected(settings()):  # migrates on connect
        pass


class Submitter:
    async def open(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        await self._stack.enter_async_context(app.connected(settings()))

    async def one(self, i: int) -> Any:
        return await noop.enqueue(i)

    async def many(self, items: list[int]) -> Any:
        return await noop.enqueue_many(items)

    async def close(self) -> None:
        await self._stack.aclose()
