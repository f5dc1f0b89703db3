"""Right and wrong uses of typed tasks, checked by mypy in tests/unit/test_typing.py.

A line that must be an error ends with ``# E: <error code>``; every other line must pass, and
``assert_type`` pins what the right calls give. This file is read by mypy, never run.
"""

from __future__ import annotations

from typing import assert_type

from pydantic import BaseModel

from jobhandler import App, JobContext, JobHandle, Task

app = App()


class Receipt(BaseModel):
    email: str
    total: float


@app.task
async def crunch(n: int) -> float:
    return n / 2


@app.task(queue="mail", max_attempts=5)
def send_receipt(email: str, ctx: JobContext) -> Receipt:
    return Receipt(email=email, total=1.0)


@app.task
async def tick() -> None:
    return None


@app.task(name="watch")
async def watch(ctx: JobContext) -> str:
    return ctx.job_id


async def right() -> None:
    assert_type(crunch, Task[int, float])
    assert_type(send_receipt, Task[str, Receipt])
    assert_type(tick, Task[None, None])
    assert_type(watch, Task[None, str])
    job = await crunch.enqueue(5, priority=3, delay=1.5, queue="fast")
    assert_type(job, JobHandle[float])
    assert_type(await job.get_result(), float)
    assert_type(await job.wait(timeout=1), JobHandle[float])
    receipt = await send_receipt.enqueue("ann@example.test", max_attempts=2, timeout=30)
    assert_type(await receipt.get_result(), Receipt)
    assert_type(await tick.enqueue(), JobHandle[None])
    assert_type(await watch.enqueue(None), JobHandle[str])
    assert_type(await crunch.enqueue_many([1, 2, 3]), list[JobHandle[float]])


def right_sync() -> None:
    job = crunch.enqueue_sync(5, run_at=1_900_000_000.0)
    assert_type(job.get_result_sync(), float)
    assert_type(send_receipt.enqueue_sync("bob@example.test").wait_sync(), JobHandle[Receipt])
    assert_type(crunch.enqueue_many_sync([1]), list[JobHandle[float]])


async def wrong() -> None:
    await crunch.enqueue("not an int")  # E: arg-type
    await send_receipt.enqueue(42)  # E: arg-type
    await crunch.enqueue(5, prioity=3)  # E: call-arg
    await crunch.enqueue(5, priority="high")  # E: arg-type
    await tick.enqueue(1)  # E: call-overload
    await crunch.enqueue_many(["a"])  # E: list-item
    await crunch.enqueue(5).get_result()  # E: attr-defined
    number: str = await (await crunch.enqueue(5)).get_result()  # E: assignment
    print(number)


def wrong_sync() -> None:
    crunch.enqueue_sync("x")  # E: arg-type
    crunch.enqueue_sync(1, delay="soon")  # E: arg-type
