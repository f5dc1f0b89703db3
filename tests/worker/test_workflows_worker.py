"""Workflows built in Python, run by real worker processes on both stores: results flow
downstream through ctx.parent_results, failures cancel only what runs after them, spawned
children hold back what runs after their parent, and a fan-in runs its child once, last."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from jobhandler import (
    App,
    JobStatus,
    Settings,
    Node,
    WorkflowHandle,
    WorkflowStatus,
    chain,
    chord,
    group,
)
from jobhandler.testing import connected as testing_connected
from tests.apps import canvasapp
from tests.apps.canvasapp import (
    boom,
    number,
    report,
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
    parts = wf.add(splitter, 3, key="split")
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
            assert seen == {"split": ["ok", 0], **pieces}, name
            merge = await app.service.jobs.get(merged["merge"])
            children = [await app.service.jobs.get(merged[k]) for k in pieces]
            assert all(merge.started_at >= c.finished_at for c in children)  # type: ignore[operator]

