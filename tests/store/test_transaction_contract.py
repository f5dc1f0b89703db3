"""Completion inside a transaction of the store's database (``transaction``, ``finish_in`` and
their blocking forms), in the store contract: on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

import pytest

from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.store import Store
from tests.store.test_workflows_contract import graph, statuses

NOW = 1_900_000_000.0
LEASE = 30.0
TABLE = "CREATE TABLE IF NOT EXISTS effects (job_id TEXT NOT NULL)"


def placeholder(conn: Any) -> str:
    return "?" if isinstance(conn, sqlite3.Connection) else "%s"


async def claimed(store: Store) -> Outcome:
    job = NewJob(str(uuid.uuid4()), "t", "default", None, 0, 3, None, NOW)
    await store.insert_jobs([job], NOW)
    (run,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    return Outcome(run.id, run.attempt, Transition.COMPLETE, result={"n": 1})


async def write(conn: Any, sql: str, *params: object) -> None:
    done = conn.execute(sql.replace("?", placeholder(conn)), params)
    if asyncio.iscoroutine(done):
        await done


async def effects(store: Store) -> list[str]:
    async with store.transaction() as conn:
        cur = conn.execute("SELECT job_id FROM effects")
        cur = await cur if asyncio.iscoroutine(cur) else cur
        rows = cur.fetchall()
        rows = await rows if asyncio.iscoroutine(rows) else rows
        return [row[0] for row in rows]


async def test_a_completion_commits_with_the_writes_or_not_at_all(store: Store) -> None:
    async with store.transaction() as conn:
        await write(conn, TABLE)
    done = await claimed(store)
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            await write(conn, "INSERT INTO effects VALUES (?)", done.job_id)
            assert await store.finish_in(conn, done, NOW)
            raise RuntimeError("the task failed after its completion was written")
    job = await store.get_job(done.job_id)
    assert job is not None and job.status is JobStatus.PROCESSING, "rolled back with the writes"
    assert await effects(store) == []

    async with store.transaction() as conn:
        await write(conn, "INSERT INTO effects VALUES (?)", done.job_id)
        assert await store.finish_in(conn, done, NOW)
    job = await store.get_job(done.job_id)
    assert job is not None and job.status is JobStatus.COMPLETED and job.result == {"n": 1}
    assert await effects(store) == [done.job_id]
    # The worker's own completion of that run, later: fenced, it changes and counts nothing.
    assert await store.finish_jobs([done], NOW + 1) == [False]
    (stats,) = await store.queue_stats(NOW)
    assert stats.counts.get("completed") == 1 and not stats.counts.get("processing")


async def test_a_stale_attempt_is_refused_inside_a_transaction(store: Store) -> None:
    done = await claimed(store)
    stale = Outcome(done.job_id, done.attempt + 1, Transition.COMPLETE)
    async with store.transaction() as conn:
        assert not await store.finish_in(conn, stale, NOW)
    job = await store.get_job(done.job_id)
    assert job is not None and job.status is JobStatus.PROCESSING


async def test_the_blocking_forms_from_a_thread(store: Store) -> None:
    async with store.transaction() as conn:
        await write(conn, TABLE)
    done = await claimed(store)

    def in_a_thread() -> bool:
        with store.transaction_sync() as conn:
            conn.execute(f"INSERT INTO effects VALUES ({placeholder(conn)})", (done.job_id,))
            return store.finish_in_sync(conn, done, NOW)

    assert await asyncio.to_thread(in_a_thread)
    job = await store.get_job(done.job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert await effects(store) == [done.job_id]


async def test_a_parent_completed_in_a_transaction_settles_its_children(store: Store) -> None:
    wf = graph({"a": [], "b": ["a"]})
    await store.insert_workflow(wf)
    (a,) = await store.claim_jobs(["default"], "w", 10, NOW, LEASE)
    outcome = Outcome(a.id, a.attempt, Transition.COMPLETE, result="r-a", wakes=True)
    async with store.transaction() as conn:
        assert await store.finish_in(conn, outcome, NOW)
        assert await statuses(store, wf) == {"a": "processing", "b": "waiting"}
    assert await statuses(store, wf) == {"a": "completed", "b": "queued"}
