"""A fan-in wider than a job's row keeps parent ids for (KEPT_PARENTS): the child still lists
every parent wherever a user reads it, its worker still gets their outcomes, a spawn still
adds to it and a copy still carries it; on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from jobhandler.model.jobs import JobStatus, Outcome, Transition
from jobhandler.model.records import JobFilter, JobRef
from jobhandler.service.transfer import copy_jobs
from jobhandler.store import Store
from jobhandler.store.postgres.dialect import PostgresStore
from jobhandler.store.rows import KEPT_PARENTS
from jobhandler.store.sqlite.dialect import SQLiteStore
from tests.store.test_workflows_contract import LEASE, NOW, graph, member

WIDE = KEPT_PARENTS + 36


def fan_in() -> dict[str, list[str]]:
    edges: dict[str, list[str]] = {f"p{i:03}": [] for i in range(WIDE)}
    edges["child"] = list(edges)
    return edges


async def test_a_wide_fan_in_lists_every_parent_and_runs_once_all_settle(store: Store) -> None:
    wf = graph(fan_in())
    await store.insert_workflow(wf)
    parent_ids = [m.job.id for m in wf.jobs[:-1]]
    child_id = wf.jobs[-1].job.id
    child = await store.get_job(child_id)
    assert child is not None and child.after == parent_ids and child.parents == WIDE
    (listed,) = [j for j in (await store.list_jobs(JobFilter(), 500, None)).jobs if j.parents]
    assert listed.after == parent_ids
    view = await store.get_workflow(wf.id)
    assert view is not None and view.jobs[-1].after == tuple(f"p{i:03}" for i in range(WIDE))

    claimed = await store.claim_jobs(["default"], "w", 500, NOW, LEASE)
    assert len(claimed) == WIDE
    spawned = await store.spawn(JobRef(claimed[0].id, claimed[0].attempt), member("extra"), NOW)
    assert spawned is not None
    for start in range(0, WIDE, 30):  # in batches, as a worker reports them
        done = [Outcome(j.id, j.attempt, Transition.COMPLETE) for j in claimed[start : start + 30]]
        assert await store.finish_jobs(done, NOW) == [True] * len(done)
    child = await store.get_job(child_id)
    assert child is not None and child.status is JobStatus.WAITING and child.waiting_on == 1
    assert child.after == [*parent_ids, spawned.id] and child.parents == WIDE + 1

    (extra,) = await store.claim_jobs(["default"], "w", 10, NOW, LEASE)
    await store.finish_jobs([Outcome(extra.id, extra.attempt, Transition.COMPLETE)], NOW)
    (ready,) = await store.claim_jobs(["default"], "w", 10, NOW, LEASE)
    assert ready.id == child_id and ready.parents == WIDE + 1
    assert len(await store.parent_outcomes(child_id)) == WIDE + 1


async def test_a_wide_fan_in_is_copied_whole(tmp_path: Path, pg: PostgresStore) -> None:
    source = SQLiteStore(str(tmp_path / "jobs.db"))
    await source.migrate()
    wf = graph(fan_in())
    try:
        await source.insert_workflow(wf)
        assert await copy_jobs(source, pg, NOW + 10**9, live_within=0) == WIDE + 1
    finally:
        await source.close()
    child = await pg.get_job(wf.jobs[-1].job.id)
    assert child is not None and child.after == [m.job.id for m in wf.jobs[:-1]]
    claimed = await pg.claim_jobs(["default"], "w", 500, NOW, LEASE)
    done = [Outcome(j.id, j.attempt, Transition.COMPLETE) for j in claimed]
    assert await pg.finish_jobs(done, NOW) == [True] * WIDE
    child = await pg.get_job(wf.jobs[-1].job.id)
    assert child is not None and child.status is JobStatus.QUEUED and child.waiting_on == 0
