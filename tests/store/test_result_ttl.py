"""A task's result_ttl (issue #21 item 7): its completed jobs are pruned after that many seconds
instead of keep_completed, sooner or later, in bounded batches, on both stores."""

from __future__ import annotations

import math
from typing import Any

import pytest

from jobhandler import App, JobStatus
from jobhandler.model.jobs import Outcome, Transition
from jobhandler.model.records import JobFilter
from jobhandler.settings import Settings
from jobhandler.worker.maintenance import Pruner

NOW = 1_900_000_000.0


async def test_the_pruner_keeps_each_completed_job_for_its_tasks_result_ttl(
    database_url: str,
) -> None:
    clock = [NOW]
    app = App(clock=lambda: clock[0])

    @app.task(result_ttl=60)
    async def brief(_: None) -> None: ...

    @app.task(result_ttl=10_000)
    async def lasting(_: None) -> None: ...

    @app.task
    async def plain(_: None) -> None: ...

    settings = Settings(database_url=database_url, keep_completed=1000, keep_failed=100_000)
    async with app.connected(settings):
        store = app.service.store
        ends = {"brief": [Transition.COMPLETE] * 3 + [Transition.FAIL]}
        for task in (brief, brief, brief, brief, lasting, plain):
            await task.enqueue(None)
        flow = app.workflow("one brief job in a workflow")
        flow.add(brief, None, key="in-flow")
        await flow.enqueue()
        for _ in range(7):  # claimed in submit order; each ends at NOW
            (job,) = await store.claim_jobs(["default"], "w1", 1, NOW, 30)
            end = (ends.get(job.task) or [Transition.COMPLETE]).pop(0)
            assert await store.finish_jobs([Outcome(job.id, 1, end)], NOW) == [True]

        async def left() -> dict[str, list[JobStatus]]:
            jobs = (await store.list_jobs(JobFilter(), 100, None)).jobs
            found: dict[str, list[JobStatus]] = {}
            for job in sorted(jobs, key=lambda j: j.status.value):
                found.setdefault(job.task, []).append(job.status)
            return found

        pruner = Pruner(app, settings, batch=2)  # several batches for brief's completed jobs
        clock[0] = NOW + 59
        assert await pruner.run_once() == 0
        clock[0] = NOW + 61
        assert await pruner.run_once() == 3  # brief's completed jobs, the failed one stays
        found = await left()
        # result_ttl is about completed jobs outside workflows: the failed one and the
        # workflow's (its children may still read it) stay.
        assert found["brief"] == [JobStatus.COMPLETED, JobStatus.FAILED]
        assert found["lasting"] == [JobStatus.COMPLETED] and "plain" in found
        clock[0] = NOW + 1001  # keep_completed: plain and the workflow's go, not lasting
        assert await pruner.run_once() == 2
        found = await left()
        assert "plain" not in found and found["brief"] == [JobStatus.FAILED]
        assert "lasting" in found
        clock[0] = NOW + 10_001
        assert await pruner.run_once() == 1
        assert set(await left()) == {"brief"}


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, 1e300, True, "60"])
def test_a_bad_result_ttl_is_refused_at_the_declaration(value: Any) -> None:
    with pytest.raises(ValueError, match="result_ttl must be a number of seconds > 0"):
        App().task(result_ttl=value)(lambda: None)
