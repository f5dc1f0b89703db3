"""The App the chaos tests run: one task that logs each of its runs, for the history checker.

Each run appends two JSON lines to ``CHAOSAPP_RUNS`` (a file shared by every worker process):
``start`` (job, attempt, worker pid, a token of its own, time) when the body begins, ``end`` when
it returns. A run killed or frozen in between has a start and no end. The task returns its token,
so the checker can tell which run's result landed in the store. One ``os.write`` of a line to a
file opened with ``O_APPEND`` is one append on Linux, so lines of several processes never mix.

Times are logged on the host's own clock, which the database and the test share, also by a
worker that libfaketime runs 30 s off (tests/faketime.py): the log is one timeline that the
checker compares with the clients' times and the jobs' ``run_at``. Were the worker's skewed
clock logged, a run started early would look on time.
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


def _clock_offset() -> float:
    """How far libfaketime runs this process's clock from the host's (``FAKETIME``, written
    ``+30s`` by tests/faketime.py); 0 when it is not loaded."""
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return 0.0
    return float(os.environ["FAKETIME"].removesuffix("s"))


CLOCK_OFFSET = _clock_offset()


def host_time() -> float:
    return time.time() - CLOCK_OFFSET


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
    _log({"event": "start", **run, "clock": CLOCK_OFFSET, "at": host_time()})
    hold = payload.hold if ctx.attempt == 1 or payload.retry_hold is None else payload.retry_hold
    if hold > 0:
        await asyncio.sleep(hold)
    if payload.fail_first and ctx.attempt == 1:
        _log({"event": "end", "token": token, "at": host_time()})
        raise FirstAttemptFailed("the first attempt fails, as asked")
    _log({"event": "end", "token": token, "at": host_time()})
    return {"token": token, "attempt": ctx.attempt}
