"""Job Handler (ours), through its public Python API, on SQLite or PostgreSQL.

Submit one: ``await noop.enqueue(i)``. Bulk: ``await noop.enqueue_many(items)`` (1,000 per call).
Workers: 2 ``jobhandler worker`` processes with their default concurrency. The drain's variants
(bench/variants.py) fill the store with ``fill_variant``: keyed no-op jobs, or ``noop_tx`` jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from typing import Any

import psycopg

from bench.adapters.common import bin_path, env, record
from jobhandler import App, JobContext
from jobhandler.settings import Settings

PACKAGE = "jobhandler"
WORKERS = "2 `jobhandler worker` processes, default concurrency"

app = App()


@app.task
async def noop(i: int) -> None:
    record(i)


# The most ctx.transaction() a worker holds open at once. Each one is a connection of its own:
# 2 workers at their default concurrency of 100 would ask PostgreSQL for 200, past its default
# max_connections of 100; an application bounds them so, and so does the benchmark. (The task
# connection pools now bound them too, to task_connections: this bound stays, so that figures
# compare with those from before the pools.)
TX_CONNECTIONS = 16
EFFECTS = "bench_effects"  # the task's own table, in the store's database
_tx_slots: asyncio.Semaphore | None = None


@app.task
async def noop_tx(i: int, ctx: JobContext) -> None:
    """``noop``, then one row of its own written in the transaction that completes the job."""
    global _tx_slots
    record(i)
    if _tx_slots is None:  # made on the worker's own loop
        _tx_slots = asyncio.Semaphore(TX_CONNECTIONS)
    async with _tx_slots, ctx.transaction() as conn:
        if isinstance(conn, sqlite3.Connection):
            conn.execute(f"INSERT INTO {EFFECTS} (marker, job_id) VALUES (?, ?)", (i, ctx.job_id))
        else:
            await conn.execute(
                f"INSERT INTO {EFFECTS} (marker, job_id) VALUES (%s, %s)", (i, ctx.job_id)
            )


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


# -- the drain's variants (bench/variants.py): the same N no-op jobs, filled another way -------


def _create_effects() -> None:
    ddl = f"CREATE TABLE IF NOT EXISTS {EFFECTS} (marker INTEGER NOT NULL, job_id TEXT NOT NULL)"
    url = env("BENCH_DB_URL")
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            conn.execute(ddl)
            conn.commit()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(ddl)


async def fill_variant(variant: str, n: int, keys: int) -> dict[str, Any]:
    """``keyed``: markers 0..n-1 of ``noop`` spread over ``keys`` concurrency keys (one
    ``enqueue_many`` per key; no key limit is declared). ``tx``: ``noop_tx`` in batches of
    1,000, after creating its table."""
    if variant == "tx":
        _create_effects()
    started = time.perf_counter()
    async with app.connected(settings()):
        if variant == "keyed":
            for k in range(keys):
                await noop.enqueue_many(list(range(k, n, keys)), concurrency_key=f"tenant-{k}")
        elif variant == "tx":
            for first in range(0, n, 1000):
                await noop_tx.enqueue_many(list(range(first, min(n, first + 1000))))
        else:
            raise SystemExit(f"adapter: unknown drain variant {variant!r}")
    return {"n": n, "seconds": time.perf_counter() - started, "method": f"bulk, {variant}"}


# -- the workflow workload: a root, N jobs after it, one child after all N ---------------------


async def submit_workflow(n: int) -> dict[str, Any]:
    """Store the fan-out/fan-in (markers: root n + 1, the N in between 0..n-1, the child n) in
    one ``service.workflows.submit``: the same call ``POST /workflows`` makes."""
    from jobhandler.model.workflows import WorkflowJobRequest, WorkflowRequest

    middle = [f"m{i}" for i in range(n)]
    jobs = [WorkflowJobRequest(key="root", task="noop", payload=n + 1)]
    jobs += [
        WorkflowJobRequest(key=k, task="noop", payload=i, after=["root"])
        for i, k in enumerate(middle)
    ]
    jobs.append(WorkflowJobRequest(key="child", task="noop", payload=n, after=middle))
    async with app.connected(settings()):
        view = await app.service.workflows.submit(WorkflowRequest(name="bench", jobs=jobs))
    return {"workflow_id": view.id, "jobs": len(view.jobs)}


async def workflow_times(workflow_id: str) -> dict[str, Any]:
    """The store's own timestamps: when the last of the N finished, when the child started."""
    async with app.connected(settings()):
        view = await app.service.workflows.get(workflow_id)
        keys = {j.key: j for j in view.jobs}
        child = await app.service.jobs.get(keys["child"].id)
        root = await app.service.jobs.get(keys["root"].id)
    last_parent = max(j.finished_at or 0.0 for j in view.jobs if j.key not in ("root", "child"))
    started = child.started_at or 0.0
    return {
        "status": view.status.value,
        "root_started_at": root.started_at,
        "last_parent_finished_at": last_parent,
        "child_started_at": started,
        "fan_in_ms": (started - last_parent) * 1000,
    }
