"""arq on Redis, default settings (max_jobs=10 per worker).

Submit one: ``await pool.enqueue_job("noop", i)``. Bulk: none. Workers: 2 ``arq`` processes;
arq's per-job INFO log lines are turned down to WARNING with its --custom-log-dict option, as
every other system here logs warnings only.
"""

from __future__ import annotations

import os
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from bench.adapters.common import bin_path, record

PACKAGE = "arq"
WORKERS = "2 `arq` processes, default max_jobs (10 async jobs each)"
NO_BULK = "none"

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_DB_URL", "redis://127.0.0.1:6379/12"))

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


async def noop(ctx: Any, i: int) -> None:
    record(i)


class WorkerSettings:
    functions = [noop]
    redis_settings = REDIS


def worker_launches() -> int:
    return 2


def worker_argv(index: int) -> list[str]:
    return [
        bin_path("arq"),
        "bench.adapters.arq_peer.WorkerSettings",
        "--custom-log-dict",
        "bench.adapters.arq_peer.LOG_CONFIG",
    ]


class Submitter:
    async def open(self) -> None:
        self.pool = await create_pool(REDIS)

    async def one(self, i: int) -> None:
        await self.pool.enqueue_job("noop", i)

    async def close(self) -> None:
        await self.pool.aclose()
