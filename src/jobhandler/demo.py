"""The built-in demo app: the Go service's ``reverse`` task, and a few to see failure at work."""

from __future__ import annotations

import asyncio
import os
import time

from jobhandler.app import App
from jobhandler.model.context import JobContext
from jobhandler.model.errors import PermanentFailure
from jobhandler.model.retry import RetryPolicy

app = App(default_task="reverse")


def _delay() -> float:
    """JOBHANDLER_DEMO_DELAY, read when a job runs (default 3 s, as in the Go service)."""
    return float(os.environ.get("JOBHANDLER_DEMO_DELAY", "3"))


@app.task
async def reverse(payload: str) -> str:
    """Wait the demo delay (cancellable), then return the payload reversed."""
    await asyncio.sleep(_delay())
    return payload[::-1]


@app.task(max_attempts=3, retry=RetryPolicy(base=0.5, max_delay=5))
async def flaky(payload: float, ctx: JobContext) -> str:
    """Fail on the first attempts, succeed on the last: shows retries with backoff.

    The payload is the number of attempts that fail (say 2).
    """
    if ctx.attempt <= payload:
        raise RuntimeError(f"attempt {ctx.attempt} failed on purpose")
    return f"succeeded on attempt {ctx.attempt}"


@app.task(max_attempts=1)
async def fail(payload: str) -> None:
    """Fail at once and for good, with the payload as the error message."""
    raise PermanentFailure(payload or "failed on purpose")


@app.task(timeout=1.0, max_attempts=2, retry=RetryPolicy(base=0.2))
async def sleep(payload: float, ctx: JobContext) -> float:
    """Sleep ``payload`` seconds with progress; over 1 s it times out (and is retried once)."""
    started = time.monotonic()
    steps = 10
    for step in range(steps):
        await asyncio.sleep(payload / steps)
        ctx.progress((step + 1) / steps)
    return time.monotonic() - started


@app.task
def spin(payload: float, ctx: JobContext) -> int:
    """Busy CPU work in a thread for ``payload`` seconds; stops early when cancelled."""
    deadline = time.monotonic() + payload
    loops = 0
    while time.monotonic() < deadline and not ctx.cancelled:
        loops += 1
    return loops


@app.task(isolation="process", timeout=30)
def crunch(payload: float) -> int:
    """CPU work in a child process for ``payload`` seconds: cancel and timeout kill it."""
    deadline = time.monotonic() + payload
    loops = 0
    while time.monotonic() < deadline:
        loops += 1
    return loops
