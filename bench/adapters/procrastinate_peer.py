"""procrastinate on PostgreSQL (psycopg 3 connector), default settings.

Submit one: ``await noop.defer_async(i=i)``. Bulk: ``await noop.batch_defer_async(...)``.
Workers: 2 ``procrastinate worker`` processes with the default concurrency (1 job at a time).
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench.adapters.common import bin_path, env, record

PACKAGE = "procrastinate"
WORKERS = "2 `procrastinate worker` processes, default concurrency (1 job at a time each)"

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_DB_URL", "")))


@app.task(name="noop")
async def noop(i: int) -> None:
    record(i)


def worker_launches() -> int:
    return 2


def worker_argv(index: int) -> list[str]:
    return [
        bin_path("procrastinate"),
        "--app",
        "bench.adapters.procrastinate_peer.app",
        "--log-level",
        "warning",
        "worker",
    ]


async def setup() -> None:
    env("BENCH_DB_URL")
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


class Submitter:
    async def open(self) -> None:
        await app.open_async()

    async def one(self, i: int) -> None:
        await noop.defer_async(i=i)

    async def many(self, items: list[int]) -> None:
        await noop.batch_defer_async(*({"i": i} for i in items))

    async def close(self) -> None:
        await app.close_async()
