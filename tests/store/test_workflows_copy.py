"""A store copy (SQLite to PostgreSQL) keeps workflows: their rows, and the edges rebuilt so a
waiting job still waits for, and is released by, its parents in the new store."""

from __future__ import annotations

from pathlib import Path

from jobhandler.model.jobs import JobStatus, Outcome, Transition
from jobhandler.service.transfer import copy_jobs
from jobhandler.store.postgres.dialect import PostgresStore
from jobhandler.store.sqlite.dialect import SQLiteStore
from tests.store.test_workflows_contract import LEASE, NOW, graph, run_one


async def test_a_copied_workflow_goes_on_in_the_new_store(
    tmp_path: Path, pg: PostgresStore
) -> None:
    source = SQLiteStore(str(tmp_path / "jobs.db"))
    await source.migrate()
    try:
        wf = graph({"a": [], "b": ["a"], "c": ["a", "b"]})
        await source.insert_workflow(wf)
        await run_one(source, "a")
        assert await copy_jobs(source, pg, NOW + 10**9, live_within=0) == 3
    finally:
        await source.close()
    view = await pg.get_workflow(wf.id)
    assert view is not None and view.name == "wf"
    assert [j.status for j in view.jobs] == [
        JobStatus.COMPLETED,
        JobStatus.QUEUED,
        JobStatus.WAITING,
    ]
    (b,) = await pg.claim_jobs(["default"], "w", 10, NOW, LEASE)
    await pg.finish_jobs([Outcome(b.id, b.attempt, Transition.COMPLETE)], NOW)
    c = await pg.get_job(wf.jobs[2].job.id)
    assert c is not None and c.status is JobStatus.QUEUED and c.waiting_on == 0
