"""Right and wrong uses of the workflow builder and canvas, checked by mypy in
tests/unit/model/test_canvas.py. A line that must be an error ends with ``# E: <code>``.
Read by mypy, never run."""

from __future__ import annotations

from typing import assert_type

from jobhandler import (
    App,
    JobContext,
    Node,
    TaskSignature,
    WorkflowHandle,
    WorkflowView,
    chain,
    chord,
    group,
)

app = App()


@app.task
async def fetch(url: str) -> bytes:
    return b""


@app.task
def count(n: int, ctx: JobContext) -> int:
    ctx.spawn_sync(fetch, "https://example.test/a", key="a")
    return n + len(ctx.parent_results)


@app.task
async def tick() -> None:
    return None


async def right() -> None:
    wf = app.workflow("etl")
    a = wf.add(fetch, "https://example.test/", priority=5, queue="io", unique_key="k")
    assert_type(a, Node[bytes])
    b = wf.add(count, 3, after=[a], on_parent_failure="run", key="b", delay=1.0)
    assert_type(b, Node[int])
    assert_type(wf.add(tick, after=[a, b]), Node[None])
    handle = await wf.enqueue()
    assert_type(handle, WorkflowHandle)
    assert_type(await handle.wait(timeout=5), WorkflowView)
    assert_type(await handle.result(b), int)
    assert_type(handle[b], str)
    assert_type(fetch.s("u"), TaskSignature[bytes])
    await chain(fetch.s("u"), count.s(1), tick.s()).enqueue()
    await chord(group(count.s(i) for i in range(3)), tick.s()).enqueue(name="fan")


async def spawns(ctx: JobContext) -> None:
    assert_type(await ctx.spawn(count, 1, key="x", priority=2), str)


async def wrong() -> None:
    wf = app.workflow("etl")
    wf.add(fetch, 5)  # E: misc
    wf.add(count, "three")  # E: misc
    wf.add(count, 3, prioity=1)  # E: call-overload
    wf.add(count, 3, unique_for=60.0)  # E: call-overload
    wf.add(count, 3, on_parent_failure="skip")  # E: call-overload
    wf.add(count, 3, after=["a"])  # E: list-item
    count.s("x")  # E: arg-type
    count.s(1, unique_for=5.0)  # E: call-arg
    await ctx_wrong(JobContext("j", "t", 1, lambda *_: None))


async def ctx_wrong(ctx: JobContext) -> None:
    await ctx.spawn(count, "x")  # E: misc
    ctx.spawn_sync(count, 1, queue=3)  # E: call-overload
