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
