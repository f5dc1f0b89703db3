"""The App the chaos tests run: one task that logs each of its runs, for the history checker.

Each run appends two JSON lines to ``CHAOSAPP_RUNS`` (a file shared by every worker process):
``start`` (job, attempt, worker pid, a token of its own, time) when the body begins, ``end`` when
it returns. A run killed or frozen in between has a start and no end. The task returns its token,
so the checker can tell which run's result landed in the store. One ``os.write`` of a line to a
file opened with ``O_APPEND`` is one append on Linux, so lines of several processes never mix.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

from pydantic import BaseModel

from jobhandler import App, JobContext
from jobhandler.model.retry import RetryPolicy

app = App()

# Retries (and rescues) come back almost at once: a chaos run waits on leases, not on backoff.
FAST_RETRY = RetryPolicy(base=0.1, factor=1.0, max_delay=0.1, jitter=0.0)


def _log(entry: dict[str, object]) -> None:
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(os.environ["CHAOSAPP_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class Step(BaseModel):
    hold: float = 0.0  # seconds the run takes
    retry_hold: float | None = None  # seconds later attempts take (default: ``hold``)
    fail_first: bool = False  # the first attempt raises (a failure, not a fault)


class FirstAttemptFailed(Exception):
    pass


@app.task(retry=FAST_RETRY)
async def step(payload: Step, ctx: JobContext) -> dict[str, object]:
    token = uuid.uuid4().hex
    run = {"job": ctx.job_id, "attempt": ctx.attempt, "worker": str(os.getpid()), "token": token}
    _log({"event": "start", **run, "at": time.time()})
    hold = payload.hold if ctx.attempt == 1 or payload.retry_hold is None else payload.retry_hold
    if hold > 0:
        await asyncio.sleep(hold)
    if payload.fail_first and ctx.attempt == 1:
        _log({"event": "end", "token": token, "at": time.time()})
        raise FirstAttemptFailed("the first attempt fails, as asked")
    _log({"event": "end", "token": token, "at": time.time()})
    return {"token": token, "attempt": ctx.attempt}
