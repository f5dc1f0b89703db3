"""Tasks with a soft timeout, one per runner (tests/acceptance/test_soft_timeout.py; process
children import it too). Each waits to be asked to stop, then returns ("finish") or raises."""

from __future__ import annotations

import asyncio
import time

from jobhandler import App, JobContext

app = App()
SOFT = 0.5  # asked to stop after this many seconds; the hard timeout is far off


def _wait_asked(ctx: JobContext) -> bool:
    deadline = time.monotonic() + 30
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    return ctx.cancelled


def _end(mode: str, asked: bool) -> str:
    if mode == "finish":
        return f"stopped cleanly, cancelled={asked}"
    raise RuntimeError(f"gave up, cancelled={asked}")


@app.task(soft_timeout=SOFT, timeout=30, max_attempts=1)
async def soft_async(mode: str, ctx: JobContext) -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        if mode == "finish":
            return _end(mode, ctx.cancelled)
        raise
    return "slept through"


@app.task(soft_timeout=SOFT, timeout=30, max_attempts=1)
def soft_thread(mode: str, ctx: JobContext) -> str:
    return _end(mode, _wait_asked(ctx))


@app.task(soft_timeout=SOFT, timeout=30, max_attempts=1, isolation="process")
def soft_process(mode: str, ctx: JobContext) -> str:
    return _end(mode, _wait_asked(ctx))


@app.task(soft_timeout=SOFT, max_attempts=2)
async def soft_retried(_: None) -> None:
    await asyncio.sleep(30)


@app.task(soft_timeout=5, timeout=30, max_attempts=1)
async def soft_quick(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done before the ask"
