"""pgqueuer on PostgreSQL (asyncpg driver), default settings.

Submit one: ``await queries.enqueue("noop", payload)``. Bulk: ``queries.enqueue`` with lists.
Workers: 2 ``pgq run`` processes with the defaults (batch size 10, no concurrency limit).
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from bench.adapters.common import bin_path, env, record

PACKAGE = "pgqueuer"
WORKERS = "2 `pgq run` processes, defaults (batch size 10, no concurrency limit)"


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    """The factory `pgq run` takes (1.6 wants an async context manager)."""
    connection = await asyncpg.connect(env("BENCH_DB_URL"))
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        record(int(job.payload or b"0"))

    try:
        yield pgq
    finally:
        await connection.close()


def worker_launches() -> int:
    return 2


def worker_argv(index: int) -> list[str]:
    return [bin_path("pgq"), "run", "bench.adapters.pgqueuer_peer:create", "--log-level", "WARNING"]


def setup() -> None:
    subprocess.run(
        [bin_path("pgq"), "--pg-dsn", env("BENCH_DB_URL"), "install"],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )


class Submitter:
    async def open(self) -> None:
        self.connection = await asyncpg.connect(env("BENCH_DB_URL"))
        self.queries = Queries(AsyncpgDriver(self.connection))

    async def one(self, i: int) -> None:
        await self.queries.enqueue("noop", str(i).encode())

    async def many(self, items: list[int]) -> None:
        n = len(items)
        await self.queries.enqueue(["noop"] * n, [str(i).encode() for i in items], [0] * n)

    async def close(self) -> None:
        await self.connection.close()
