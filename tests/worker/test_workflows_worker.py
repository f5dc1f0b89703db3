"""Workflows built in Python, run by real worker processes on both stores: results flow
downstream through ctx.parent_results, failures cancel only what runs after them, spawned
children hold back what runs after their parent, and a fan-in runs its child once, last."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from jobhandler import (
    App,
    JobStatus,
    Node,
    Settings,
    WorkflowHandle,
    WorkflowStatus,
    chain,
    chord,
    group,
    testing,
)
from jobhandler.model.records import JobFilter
from tests.apps import canvasapp
from tests.apps.canvasapp import (
    boom,
    number,
    report,
    slow_number,
    split,
    split_in_process,
    split_in_thread,
    total,
    total_in_process,
    total_in_thread,
)
from tests.conftest import Process, test_env

app = canvasapp.app
WAIT = 90.0


@asynccontextmanager
async def with_workers(
    spawn: Callable[..., Process], database_url: str, count: int = 1
) -> AsyncIterator[App]:
    """The app connected here (migrating the store first), ``count`` workers as processes."""
    async with app.connected(Settings(database_url=database_url)):
        env = test_env(
            database_url,
            JOBHANDLER_APP="canvasapp:app",
            JOBHANDLER_CONCURRENCY="20",
            JOBHANDLER_POLL_INTERVAL="0.2",
            JOBHANDLER_PROCESS_CONCURRENCY="1",
        )
        for _ in range(count):
            spawn(["worker"], env)
        yield app


async def wait_for_workers(count: int) -> None:
    deadline = time.monotonic() + WAIT
    while len(await app.service.workers()) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        await asyncio.sleep(0.05)


def statuses(handle: WorkflowHandle) -> dict[str, JobStatus]:
    return {job.key: job.status for job in handle.view.jobs}


async def results(handle: WorkflowHandle) -> dict[str, Any]:
    return {key: (await app.service.jobs.get(job_id)).result for key, job_id in handle.jobs.items()}


async def diamond(total_task: Any = total) -> tuple[WorkflowHandle, Node[int]]:
    wf = app.workflow("diamond")
    a = wf.add(number, 1, key="a")
    b = wf.add(total, 10, after=[a], key="b")
    c = wf.add(total_in_thread, 100, after=[a], key="c")
    d = wf.add(total_task, 0, after=[b, c], key="d")
    return await wf.enqueue(), d


async def failing() -> WorkflowHandle:
    wf = app.workflow("failing")
    a = wf.add(number, 1, key="a")
    f = wf.add(boom, after=[a], key="f")
    wf.add(total, 0, after=[f], key="g")  # cancelled: its parent failed
    wf.add(report, None, after=[f, a], key="h", on_parent_failure="run")
    wf.add(total, 5, after=[a], key="i")  # not downstream of f: runs
    return await wf.enqueue()


async def spawning(splitter: Any) -> WorkflowHandle:
    wf = app.workflow("split and merge")
    parts = wf.add(splitter, 3, key="split", concurrency_key="acme")  # its pieces inherit it
    wf.add(report, None, after=[parts], key="merge")
    return await wf.enqueue()


async def test_diamond_failures_and_spawns_on_a_worker_process(
    spawn: Callable[..., Process], database_url: str
) -> None:
    async with with_workers(spawn, database_url):
        (done, d), (in_process, _) = await diamond(), await diamond(total_in_process)
        handles = {
            "diamond": done,
            "process": in_process,
            "failing": await failing(),
            **{s.name: await spawning(s) for s in (split, split_in_thread, split_in_process)},
        }
        for handle in handles.values():
            await handle.wait(WAIT)

        assert done.status is WorkflowStatus.COMPLETED
        assert await results(done) == {"a": 1, "b": 11, "c": 101, "d": 112}
        assert await done.result(d) == 112
        assert (await results(handles["process"]))["d"] == 112  # a process child's ctx too

        failed = handles["failing"]
        assert failed.status is WorkflowStatus.FAILED
        assert statuses(failed) == {
            "a": JobStatus.COMPLETED,
            "f": JobStatus.FAILED,
            "g": JobStatus.CANCELLED,
            "h": JobStatus.COMPLETED,
            "i": JobStatus.COMPLETED,
        }
        seen = (await results(failed))["h"]
        assert seen == {"a": ["ok", 1], "f": ["failed", "failed", "boom"]}
        g = await app.service.jobs.get(failed["g"])
        assert g.started_at is None and g.blocked_by == failed["f"]

        for name in ("split", "split_in_thread", "split_in_process"):
            merged = handles[name]
            assert merged.status is WorkflowStatus.COMPLETED, name
            seen = (await results(merged))["merge"]
            pieces = {f"piece-{i}": ["ok", i * i] for i in range(3)}
            # The merge saw every piece's result: it ran after each of them completed. (Not
            # by timestamps: a claim reads its clock before it waits for the store's lock, so
            # its started_at may be a little earlier than a parent's finishing write.)
            assert seen == {"split": ["ok", 0], **pieces}, name
            spawned = [job for key, job in merged.jobs.items() if key.startswith("piece-")]
            keys = {(await app.service.jobs.get(job_id)).concurrency_key for job_id in spawned}
            assert len(spawned) == 3 and keys == {"acme"}, name  # a tenant's pieces stay its own


async def test_chain_group_and_chord_on_a_worker_process(
    spawn: Callable[..., Process], database_url: str
) -> None:
    async with with_workers(spawn, database_url):
        chained = await chain(number.s(2), total.s(3), total.s(4, key="last")).enqueue()
        chorded = await chord(group(number.s(i) for i in range(5)), total.s(0)).enqueue()
        nested = await chain(number.s(1), group(total.s(10), total.s(20)), total.s(0)).enqueue()
        for handle in (chained, chorded, nested):
            assert (await handle.wait(WAIT)).status is WorkflowStatus.COMPLETED
        assert await results(chained) == {"number": 2, "total": 5, "last": 9}
        assert chained.view.name == "chain(number, total, last)"
        assert (await results(chorded))["total"] == 10
        assert set(chorded.jobs) == {"number", *(f"number-{i}" for i in range(2, 6)), "total"}
        assert await results(nested) == {"number": 1, "total": 11, "total-2": 21, "total-3": 32}


async def test_a_fan_in_of_500_on_three_workers_runs_its_child_once_after_the_last_parent(
    spawn: Callable[..., Process], database_url: str
) -> None:
    async with with_workers(spawn, database_url, count=3):
        await wait_for_workers(3)
        wf = app.workflow("fan-in")
        parents = [wf.add(slow_number, i) for i in range(500)]
        child = wf.add(total, 0, after=parents, key="child")
        handle = await wf.enqueue()
        assert (await handle.wait(WAIT)).status is WorkflowStatus.COMPLETED
        # It read its parents when it started: all 500 were completed by then.
        assert await handle.result(child) == sum(range(500))
        page = await app.service.jobs.page(JobFilter(workflow_id=handle.id), 1000)
        jobs = {job.id: job for job in page.jobs}
        ran = jobs.pop(handle[child])
        assert ran.attempt == 1  # claimed once
        # Its claim came after the last parent's finishing write (started_at is read before a
        # claim waits for SQLite's write lock, so it may be a little earlier than that write).
        assert ran.finished_at is not None
        assert ran.finished_at >= max(job.finished_at or 0 for job in jobs.values())
        assert len({job.worker_id for job in jobs.values()}) > 1  # the parents were shared


def test_the_sync_form_from_plain_code(spawn: Callable[..., Process], sqlite_url: str) -> None:
    with app.connected_sync(Settings(database_url=sqlite_url)):
        spawn(["worker"], test_env(sqlite_url, JOBHANDLER_APP="canvasapp:app"))
        wf = app.workflow("sync")
        a = wf.add(number, 20)
        b = wf.add(total, 22, after=[a])
        handle = wf.enqueue_sync()
        assert handle.wait_sync(WAIT).status is WorkflowStatus.COMPLETED
        assert handle.result_sync(b) == 42
        assert chain(number.s(1), total.s(1)).enqueue_sync().wait_sync(WAIT).finished


async def test_the_testing_kit_drains_workflows_in_process() -> None:
    async with testing.connected(app) as kit:
        handle, d = await diamond()
        kit.assert_enqueued(total, 0)  # the workflow's jobs are recorded as enqueued
        await kit.drain()
        assert (await handle.refresh()).status is WorkflowStatus.COMPLETED
        assert await handle.result(d) == 112
        merged = await spawning(split)
        await kit.drain()
        assert (await results(merged))["merge"]["piece-2"] == ["ok", 4]
    async with testing.connected(app, eager=True):
        handle = await chord(group(number.s(i) for i in range(3)), total.s(1)).enqueue()
        assert handle.status is WorkflowStatus.COMPLETED  # run to its end as it was enqueued
        assert (await results(handle))["total"] == 4


async def test_cancel_stops_what_has_not_run(database_url: str) -> None:
    async with app.connected(Settings(database_url=database_url)):  # no worker
        handle, _ = await diamond()
        view = await handle.cancel()
        assert view.status is WorkflowStatus.CANCELLED
        assert set(statuses(handle).values()) == {JobStatus.CANCELLED}
