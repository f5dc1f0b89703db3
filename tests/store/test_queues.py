"""Flow control in the claim, on a real SQLite file and a real PostgreSQL: pauses and limits
kept in the store hold over every claimer, whichever connection or process it uses."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

import psycopg

from jobhandler.model.jobs import Outcome, Transition
from jobhandler.model.records import FlowLimit
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store
from jobhandler.store.postgres.dialect import CLAIM_SQL
from jobhandler.store.sqlite.dialect import QUERIES
from jobhandler.store.sqlite.statements import bound
from tests.store.test_contract import LEASE, NOW, new_job

BOTH = frozenset({"concurrency", "rate_limit"})


async def claim(store: Store, n: int, now: float = NOW, worker: str = "w1") -> list[str]:
    return [j.task for j in await store.claim_jobs(["default", "other"], worker, n, now, LEASE)]


async def finish(store: Store, now: float, worker: str = "w1") -> None:
    """Complete one processing job of ``worker``."""
    (job, *_) = [
        j for j in await store.expired_jobs(now + 10 * LEASE, 100) if j.worker_id == worker
    ]
    await store.finish_jobs([Outcome(job.id, job.attempt, Transition.COMPLETE)], now)


async def test_a_paused_queue_gives_nothing_until_resumed_and_stays_paused(
    store: Store, database_url: str
) -> None:
    await store.insert_jobs([new_job(), new_job(queue="other")], NOW)
    paused = await store.set_paused("default", True, NOW)
    assert paused == FlowLimit("queue", "default", paused=True)
    assert [j.queue for j in await store.claim_jobs(["default", "other"], "w", 5, NOW, LEASE)] == [
        "other"
    ]
    reopened = open_store(Settings(database_url=database_url))  # kept in the store
    try:
        assert await reopened.flow_limits() == [paused]
        assert await reopened.claim_jobs(["default"], "w", 5, NOW, LEASE) == []
        await reopened.set_paused("default", False, NOW)
    finally:
        await reopened.close()
    assert len(await store.claim_jobs(["default"], "w", 5, NOW, LEASE)) == 1


async def test_a_queue_concurrency_limit_counts_every_worker(store: Store) -> None:
    await store.insert_jobs([new_job() for _ in range(5)], NOW)
    await store.set_limits(FlowLimit("queue", "default", concurrency=2), NOW, BOTH)
    assert len(await claim(store, 10, worker="w1")) == 2
    assert await claim(store, 10, worker="w2") == []
    await finish(store, NOW + 1)
    assert len(await claim(store, 10, NOW + 2, worker="w2")) == 1
    # Removed: the rest go at once.
    await store.set_limits(FlowLimit("queue", "default"), NOW, frozenset({"concurrency"}))
    assert len(await claim(store, 10, NOW + 3)) == 2


async def test_a_task_limit_leaves_the_other_tasks_of_its_queue_free(store: Store) -> None:
    await store.insert_jobs([new_job(task="a") for _ in range(3)], NOW)
    await store.insert_jobs([new_job(task="b") for _ in range(3)], NOW + 1)
    await store.set_limits(FlowLimit("task", "a", concurrency=1), NOW, BOTH)
    assert sorted(await claim(store, 10, NOW + 2)) == ["a", "b", "b", "b"]
    assert await claim(store, 10, NOW + 3) == []


async def test_a_task_held_back_does_not_block_its_queue_limit(store: Store) -> None:
    # Queue limit 2, task a limit 1: the second a waits, and b takes the queue's other slot.
    await store.insert_jobs([new_job(task="a") for _ in range(3)], NOW)
    await store.insert_jobs([new_job(task="b")], NOW + 1)
    await store.set_limits(FlowLimit("queue", "default", concurrency=2), NOW, BOTH)
    await store.set_limits(FlowLimit("task", "a", concurrency=1), NOW, BOTH)
    assert sorted(await claim(store, 10, NOW + 2)) == ["a", "b"]


async def test_a_rate_limit_is_a_bucket_shared_by_every_worker(store: Store) -> None:
    await store.insert_jobs([new_job() for _ in range(20)], NOW)
    await store.set_limits(FlowLimit("queue", "default", rate_limit="4/s"), NOW, BOTH)
    assert len(await claim(store, 10, NOW, worker="w1")) == 4  # a full bucket
    assert await claim(store, 10, NOW + 0.1, worker="w2") == []  # 0.4 of a token
    assert len(await claim(store, 10, NOW + 0.5, worker="w2")) == 2  # 2 tokens by now
    assert len(await claim(store, 10, NOW + 0.75, worker="w1")) == 1
    assert len(await claim(store, 10, NOW + 10, worker="w3")) == 4  # never more than the bucket


async def test_claims_of_one_worker_at_one_instant_spend_each_token_once(store: Store) -> None:
    """A coarse or stepped-back clock can give two claims of one worker the same time; SQLite's
    bucket spend finds a claim's jobs by worker and start time, so the second must not count
    the first's jobs again."""
    await store.insert_jobs([new_job() for _ in range(20)], NOW)
    await store.set_limits(FlowLimit("queue", "default", rate_limit="5/h"), NOW, BOTH)
    assert len(await claim(store, 1, NOW, worker="w1")) == 1
    assert len(await claim(store, 1, NOW, worker="w1")) == 1
    assert len(await claim(store, 10, NOW, worker="w2")) == 3  # 5 tokens, 2 spent


async def test_code_declarations_give_way_to_run_time_changes_until_the_code_changes(
    store: Store,
) -> None:
    async def declare(concurrency: int | None, rate: str | None) -> FlowLimit:
        await store.declare_limits([FlowLimit("queue", "q", False, concurrency, rate)], NOW)
        (found,) = await store.flow_limits()
        return found

    assert await declare(2, "10/s") == FlowLimit("queue", "q", False, 2, "10/s")
    await store.set_limits(FlowLimit("queue", "q", concurrency=5), NOW, frozenset({"concurrency"}))
    assert await declare(2, "10/s") == FlowLimit("queue", "q", False, 5, "10/s")  # kept
    assert await declare(3, "10/s") == FlowLimit("queue", "q", False, 3, "10/s")  # code changed
    assert await declare(None, None) == FlowLimit("queue", "q", False, None, None)


async def claim_all(stores: Sequence[Store], queue: str, now: float) -> list[str]:
    async def one(s: Store, worker: str) -> list[str]:
        return [j.id for j in await s.claim_jobs([queue], worker, 3, now, LEASE)]

    found = await asyncio.gather(*(one(s, f"w{i}") for i, s in enumerate(stores)))
    return [i for ids in found for i in ids]


async def test_concurrent_claimers_never_pass_a_limit(store: Store, database_url: str) -> None:
    await store.insert_jobs([new_job() for _ in range(50)], NOW)
    await store.insert_jobs([new_job(queue="other") for _ in range(50)], NOW)
    await store.set_limits(FlowLimit("queue", "default", concurrency=2), NOW, BOTH)
    await store.set_limits(FlowLimit("queue", "other", rate_limit="5/min"), NOW, BOTH)
    others = [open_store(Settings(database_url=database_url)) for _ in range(5)]
    try:
        for round_ in range(3):
            assert len(await claim_all([store, *others], "default", NOW + round_)) <= 2
            assert len(await claim_all([store, *others], "other", NOW + round_)) <= 5
    finally:
        for s in others:
            await s.close()
    stats = {q.queue: q.counts for q in await store.queue_stats()}
    assert stats["default"]["processing"] == 2
    assert stats["other"]["processing"] == 5


async def test_the_sqlite_claim_reads_the_partial_index_with_and_without_limits(
    sqlite_url: str,
) -> None:
    store = open_store(Settings(database_url=sqlite_url))
    await store.migrate()
    try:
        await store.insert_jobs([new_job(task=f"t{i % 3}") for i in range(30)], NOW)

        def plan() -> str:
            text, values = bound(
                QUERIES["claim_jobs"].text,
                {
                    "queues": ["default", "q1"],
                    "worker": "w",
                    "now": NOW,
                    "limit": 5,
                    "lease_until": 0,
                },
            )
            with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
                rows = conn.execute("EXPLAIN QUERY PLAN " + text, values).fetchall()
            return "\n".join(str(row[3]) for row in rows)

        for limit in (None, FlowLimit("queue", "default", concurrency=2)):
            if limit is not None:
                await store.set_limits(limit, NOW, BOTH)
                await store.set_limits(FlowLimit("task", "t1", rate_limit="1/s"), NOW, BOTH)
            found = plan()
            assert "USING INDEX jobs_due" in found, found
            assert "SCAN jobs" not in found and "SCAN j\n" not in found, found
    finally:
        await store.close()


async def test_the_postgres_claim_reads_the_partial_index_under_limits(
    pg_database_url: str,
) -> None:
    store = open_store(Settings(database_url=pg_database_url))
    await store.migrate()
    try:
        await store.insert_jobs([new_job(task=f"t{i % 3}") for i in range(30)], NOW)
        await store.set_limits(FlowLimit("queue", "default", concurrency=2), NOW, BOTH)
        await store.set_limits(FlowLimit("task", "t1", rate_limit="1/s"), NOW, BOTH)
        params = {"queues": ["default"], "now": NOW, "limit": 5, "worker": "w", "lease_until": 0}
        async with await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True) as conn:
            # Among many finished jobs (as test_postgres.py's test without limits).
            await conn.execute(
                "INSERT INTO jobs (id, task, queue, payload, status, max_attempts, attempt,"
                " run_at, created_at, updated_at, finished_at)"
                " SELECT 'done-' || n, 't', 'default', '{}', 'completed', 3, 1, 0, 0, 0, 0"
                " FROM generate_series(1, 20000) AS n"
            )
            await conn.execute("ANALYZE jobs")
            cur = await conn.execute("EXPLAIN " + CLAIM_SQL, params)
            found = "\n".join(str(row[0]) for row in await cur.fetchall())
        assert "jobs_due" in found and "Seq Scan on jobs " not in found, found
        assert len(await store.claim_jobs(["default"], "w", 10, NOW, LEASE)) == 2
    finally:
        await store.close()
