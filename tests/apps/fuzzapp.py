"""The App schemathesis drives: every kind of payload type, and tasks that end at once.

The demo app's CPU tasks (``spin``, ``crunch``) would take a schema-valid payload such as 1e300
as seconds of busy work; these tasks take the same kinds of input and finish in microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, Field

from jobhandler import App, JobContext
from jobhandler.model.errors import PermanentFailure

app = App(default_task="echo")


@app.task
async def echo(payload: str) -> str:
    return payload[::-1]


@app.task(max_attempts=1)
async def double(payload: float, ctx: JobContext) -> float:
    ctx.progress(0.5)
    return payload * 2  # 1e308 * 2 is not JSON: the run fails with a clear error


class Line(BaseModel):
    item: str = Field(min_length=1, max_length=50)
    qty: int = Field(ge=1, le=1000)


class Order(BaseModel):
    lines: list[Line] = Field(max_length=20)
    note: str | None = None


@app.task(queue="orders")
def total(order: Order) -> dict[str, int]:
    return {"lines": len(order.lines), "qty": sum(line.qty for line in order.lines)}


@dataclass
class Point:
    x: float
    y: float


@app.task(max_attempts=1)
async def refuse(payload: Point) -> None:
    raise PermanentFailure(f"refused {payload.x},{payload.y}")


@app.task
async def nothing() -> None:
    return None


@app.task(max_attempts=1)
async def bad_progress(ctx: JobContext) -> None:
    ctx.progress({"done": math.nan})  # no store can hold it: the run fails, clearly
