"""A dict's key order survives the store, on both: payloads, results and progress come back
as they went in (PostgreSQL keeps them as json, not jsonb, which would sort the keys)."""

from __future__ import annotations

import asyncio
from typing import Any

from jobhandler import App, JobContext, JobStatus, Settings
from jobhandler.worker import Worker

# Keys jsonb would reorder (it sorts by length, then bytes), and a nested object too.
ORDERED = {"zeta": 1, "b": 2, "alpha": {"y": 1, "x": 2}, "aa": [3, {"k2": 0, "k1": 1}]}


async def test_a_dicts_key_order_round_trips(database_url: str) -> None:
    app = App()
    seen: list[Any] = []

    @app.task
    async def echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        seen.append(payload)
        ctx.progress({"step": 2, "of": 3, "a": 1})
        return {**payload, "added": True}

    settings = Settings(database_url=database_url, poll_interval=0.05)
    async with app.connected(settings):
        job = await echo.enqueue(ORDERED)
        assert list((await app.service.jobs.get(job.id)).payload) == list(ORDERED)
        worker = Worker(app, settings)
        run = asyncio.create_task(worker.run())
        try:
            done = await app.service.jobs.wait(job.id, 20)
        finally:
            worker.stop()
            await asyncio.wait_for(run, 10)
    assert done.status is JobStatus.COMPLETED
    assert list(seen[0]) == list(ORDERED)
    assert list(seen[0]["alpha"]) == ["y", "x"]
    assert list(done.result) == [*ORDERED, "added"]
    assert list(done.result["aa"][1]) == ["k2", "k1"]
    assert done.progress is None or list(done.progress) == ["step", "of", "a"]
