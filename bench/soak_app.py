"""The App bench/soak.py runs: one task whose payload says how it behaves, and two schedules.

``mode`` is "ok" (a short sleep), "flaky" (the first attempt asks to be retried), "fail_once"
(the first attempt fails for good, so the client's user retry has work to do) or "slow" (long
enough for a cancel to find it running).
"""

from __future__ import annotations

import asyncio

from jobhandler import App, JobContext, PermanentFailure, RetryLater

app = App()

SLEEP = {"ok": 0.02, "flaky": 0.02, "fail_once": 0.02, "slow": 3.0}


@app.task(max_attempts=3)
async def work(payload: dict[str, str], ctx: JobContext) -> str:
    mode = payload.get("mode", "ok")
    if mode == "flaky" and ctx.attempt == 1:
        raise RetryLater(1.0)
    if mode == "fail_once" and ctx.attempt == 1:
        raise PermanentFailure("failed on purpose; the soak's client retries it")
    await asyncio.sleep(SLEEP.get(mode, 0.02))
    return mode


@app.periodic(cron="* * * * *", name="soak-cron")
@app.task
async def cron_tick() -> str:
    return "tick"


@app.periodic(every=10, name="soak-every-10s")
@app.task
async def every_tick() -> str:
    return "tick"
