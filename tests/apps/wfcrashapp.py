"""The App the workflow crash tests run: crashapp's ledger, plus tasks that also write when each
run started (so a test can compare a child's first start with its parents' ends in the store)
and one that always fails.

Workers run it as ``wfcrashapp:app``; it is crashapp's App with these tasks added, so the crash
tests' helpers (tests/acceptance/test_crash.py) read the same ledger.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

from crashapp import FAST_RETRY, Hold, app, record_event, record_run

from jobhandler import JobContext

__all__ = ["app"]


async def _hold(payload: Hold, ctx: JobContext) -> None:
    hold = payload.hold if ctx.attempt == 1 or payload.retry_hold is None else payload.retry_hold
    if hold > 0:
        await asyncio.sleep(hold)


@app.task(retry=FAST_RETRY)
async def step(payload: Hold, ctx: JobContext) -> dict[str, int]:
    """Record the run and its start time, hold, and say which attempt in which process ran."""
    record_run(ctx)
    record_event(ctx, "start")
    await _hold(payload, ctx)
    return {"attempt": ctx.attempt, "pid": os.getpid()}


@app.task(max_attempts=1, retry=FAST_RETRY)
async def broken(payload: Hold, ctx: JobContext) -> None:
    """Fails for good, after its hold."""
    record_run(ctx)
    record_event(ctx, "start")
    await _hold(payload, ctx)
    raise RuntimeError("broken on purpose")


def read_starts(path: str) -> dict[str, list[float]]:
    """When each run of ``step`` and ``broken`` started, per job, in order."""
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        rows = conn.execute(
            "SELECT job_id, at FROM events WHERE event = 'start' ORDER BY at"
        ).fetchall()
    finally:
        conn.close()
    starts: dict[str, list[float]] = {}
    for job_id, at in rows:
        starts.setdefault(job_id, []).append(float(at))
    return starts
