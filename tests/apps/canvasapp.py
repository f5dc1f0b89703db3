"""The App the workflow worker tests run (tests/worker/test_workflows_worker.py): numbers that
add up along the graph, so a result shows which parents a job saw."""

from __future__ import annotations

import asyncio
from typing import Any

from jobhandler import App, JobContext, ParentFailed, PermanentFailure

app = App()


def _sum(ctx: JobContext) -> int:
    return sum(v for v in ctx.parent_results.values() if isinstance(v, int))


@app.task
async def number(n: int) -> int:
    return n


@app.task
async def total(extra: int, ctx: JobContext) -> int:
    """``extra`` plus every parent's number."""
    return extra + _sum(ctx)


@app.task
def total_in_thread(extra: int, ctx: JobContext) -> int:
    return extra + _sum(ctx)


@app.task(isolation="process")
def total_in_process(extra: int, ctx: JobContext) -> int:
    return extra + _sum(ctx)


@app.task(max_attempts=1)
async def boom(_: None = None) -> None:
    raise PermanentFailure("boom")


@app.task
async def report(_: None, ctx: JobContext) -> dict[str, Any]:
    """What the job saw of each parent: its result, or how it failed."""
    return {
        key: ["failed", v.status.value, v.error] if isinstance(v, ParentFailed) else ["ok", v]
        for key, v in ctx.parent_results.items()
    }


@app.task
async def square(n: int) -> int:
    return n * n


@app.task
async def split(n: int, ctx: JobContext) -> int:
    for i in range(n):
        await ctx.spawn(square, i, key=f"piece-{i}")
    return 0


@app.task
def split_in_thread(n: int, ctx: JobContext) -> int:
    for i in range(n):
        ctx.spawn_sync(square, i, key=f"piece-{i}")
    return 0


@app.task(isolation="process")
def split_in_process(n: int, ctx: JobContext) -> int:
    for i in range(n):
        ctx.spawn_sync(square, i, key=f"piece-{i}", priority=1)
    return 0


@app.task
async def slow_number(n: int) -> int:
    await asyncio.sleep(0.01)  # long enough for every worker to take a share
    return n
