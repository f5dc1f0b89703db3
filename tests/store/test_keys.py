"""Concurrency keys in the claim, on a real SQLite file and a real PostgreSQL: keys of a queue
are claimed round-robin (the unkeyed jobs taking one turn), priorities order within a key,
and per-key limits of a queue or a task hold over every claimer (docs/tenants.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
import time
from collections import Counter

import psycopg

from jobhandler.model.jobs import NewJob, Outcome, Transition
from jobhandler.model.records import FlowLimit
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store
from jobhandler.store.postgres.dialect import QUERIES as PG_QUERIES
from jobhandler.store.sqlite.dialect import QUERIES
from jobhandler.store.sqlite.statements import bound
from tests.store.test_contract import LEASE, NOW, new_job

KEYS = frozenset({"key_concurrency", "key_rate_limit"})


def keyed(key: str | None, task: str = "t", priority: int = 0, queue: str = "default") -> NewJob:
    return dataclasses.replace(
        new_job(task=task, priority=priority, queue=queue, payload=key), concurrency_key=key
    )


async def take(store: Store, n: int, worker: str = "w1", now: float = NOW) -> list[str | None]:
    return [j.concurrency_key for j in await store.claim_jobs(["default"], worker, n, now, LEASE)]


async def test_keys_take_turns_behind_a_backlog_and_the_unkeyed_jobs_take_one(
    store: Store,
) -> None:
    await store.insert_jobs([keyed("big") for _ in range(200)], NOW)
    await store.insert_jobs([keyed("small") for _ in range(5)], NOW)
    await store.insert_jobs([new_job() for _ in range(5)], NOW)
    one_by_one = [(await take(store, 1))[0] for _ in range(15)]
    for turn in range(0, 15, 3):  # every turn of three serves each group once
        assert sorted(one_by_one[turn : turn + 3], key=str) == [None, "big", "small"]
    batched = Counter(await take(store, 9) + await take(store, 9))
    assert batched == {"big": 18}  # the others are done: the backlog takes everything


async def test_a_batch_claim_takes_round_by_round(store: Store) -> None:
    await store.insert_jobs([keyed("a") for _ in range(50)], NOW)
    await store.insert_jobs([keyed(k) for k in ("b", "c") for _ in range(3)], NOW)
    assert Counter(await take(store, 6)) == {"a": 2, "b": 2, "c": 2}
    assert Counter(await take(store, 6)) == {"a": 4, "b": 1, "c": 1}


async def test_priorities_order_the_jobs_of_one_key(store: Store) -> None:
    jobs = [keyed("a", priority=p) for p in (0, 5, 1)] + [keyed("b", priority=9)]
    await store.insert_jobs(jobs, NOW)
    taken = await store.claim_jobs(["default"], "w", 4, NOW, LEASE)
    a_order = [j.priority for j in taken if j.concurrency_key == "a"]
    assert sorted(a_order, reverse=True) == [5, 1, 0]
    first = await_claim_order(taken)
    assert first[:2] in (["a5", "b9"], ["b9", "a5"])


def await_claim_order(taken: list) -> list[str]:  # type: ignore[type-arg]
    return [f"{j.concurrency_key}{j.priority}" for j in taken]


async def finish_one(store: Store, key: str, now: float) -> None:
    running = [j for j in await store.expired_jobs(now + 10 * LEASE, 1000) if j.status.value]
    job = next(j for j in running if j.concurrency_key == key)
    await store.finish_jobs([Outcome(job.id, job.attempt, Transition.COMPLETE)], now)


async def test_a_queue_key_concurrency_counts_each_key_over_every_claimer(store: Store) -> None:
    await store.insert_jobs([keyed(k) for k in ("a", "b") for _ in range(10)] + [new_job()], NOW)
    await store.set_limits(FlowLimit("queue", "default", key_concurrency=2), NOW, KEYS)
    assert Counter(await take(store, 10, "w1")) == {"a": 2, "b": 2, None: 1}
    assert await take(store, 10, "w2") == []
    await finish_one(store, "a", NOW + 1)
    assert await take(store, 10, "w2", NOW + 1) == ["a"]
    await store.set_limits(FlowLimit("queue", "default"), NOW, KEYS)  # removed at run time
    assert Counter(await take(store, 20, "w2", NOW + 1)) == {"a": 7, "b": 8}


async def test_a_task_key_limit_counts_per_task_and_key(store: Store) -> None:
    jobs = [keyed("a", task=t) for t in ("t1", "t2") for _ in range(5)]
    await store.insert_jobs(jobs, NOW)
    await store.set_limits(FlowLimit("task", "t1", key_concurrency=1), NOW, KEYS)
    taken = await store.claim_jobs(["default"], "w", 20, NOW, LEASE)
    assert Counter(j.task for j in taken) == {"t1": 1, "t2": 5}


async def test_a_key_rate_limit_is_a_bucket_per_key(store: Store) -> None:
    await store.insert_jobs([keyed(k) for k in ("a", "b") for _ in range(10)], NOW)
    await store.set_limits(FlowLimit("queue", "default", key_rate_limit="2/s"), NOW, KEYS)
    assert Counter(await take(store, 20)) == {"a": 2, "b": 2}
    assert await take(store, 20, now=NOW + 0.1) == []
    assert Counter(await take(store, 20, now=NOW + 0.5)) == {"a": 1, "b": 1}
    assert Counter(await take(store, 20, now=NOW + 10)) == {"a": 2, "b": 2}  # a full bucket


async def test_concurrent_claimers_never_pass_a_key_limit(store: Store, database_url: str) -> None:
    await store.insert_jobs([keyed(k) for k in "abcd" for _ in range(30)], NOW)
    await store.set_limits(FlowLimit("queue", "default", key_concurrency=3), NOW, KEYS)
    others = [open_store(Settings(database_url=database_url)) for _ in range(4)]
    try:
        rounds = [
            asyncio.gather(*(take(s, 5, f"w{i}") for i, s in enumerate(others))) for _ in range(3)
        ]
        taken = Counter(k for found in [await r for r in rounds] for ks in found for k in ks)
        assert taken == {"a": 3, "b": 3, "c": 3, "d": 3}
    finally:
        for other in others:
            await other.close()


async def test_a_keyed_backlog_is_shown_as_waiting(store: Store) -> None:
    now = time.time()
    await store.insert_jobs([dataclasses.replace(keyed("a"), run_at=now - 50)], now)
    await store.insert_jobs([dataclasses.replace(new_job(), run_at=now - 10)], now)
    (stats,) = await store.queue_stats()
    assert stats.oldest_waiting_at == now - 50
    assert stats.counts["queued"] == 2


async def test_keyed_jobs_that_come_during_an_unkeyed_drain_get_their_turn_at_once(
    store: Store,
) -> None:
    await store.insert_jobs([new_job() for _ in range(20)], NOW)
    assert await take(store, 2) == [None, None]  # the unkeyed claim, alone
    await store.insert_jobs([keyed("late") for _ in range(3)], NOW)
    assert Counter(await take(store, 4)) == {None: 2, "late": 2}
    assert Counter(await take(store, 4)) == {None: 3, "late": 1}
    assert await take(store, 4) == [None] * 4  # none due: the unkeyed claim again


CLAIM_PARAMS = {"queues": ["default", "q1"], "worker": "w", "now": NOW, "limit": 5}


async def test_the_sqlite_claims_read_only_their_partial_indexes(sqlite_url: str) -> None:
    """Unkeyed: the due index of unkeyed jobs, plus one probe of the keyed one (that is all
    an unkeyed drain reads more); keyed: the keyed index, key by key. No scan of jobs."""
    store = open_store(Settings(database_url=sqlite_url))
    await store.migrate()
    try:
        await store.insert_jobs([new_job() for _ in range(30)], NOW)
        await store.insert_jobs([keyed(k) for k in "abc" for _ in range(10)], NOW)
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
            for name in ("claim_jobs", "claim_keyed"):
                text, values = bound(QUERIES[name].text, {**CLAIM_PARAMS, "lease_until": 0})
                rows = conn.execute("EXPLAIN QUERY PLAN " + text, values).fetchall()
                found = "\n".join(str(row[3]) for row in rows)
                assert "USING INDEX jobs_due " in found and "jobs_due_keyed" in found, found
                assert not re.search(r"SCAN (jobs|j)\b", found), found  # jobs, read whole
    finally:
        await store.close()


async def test_the_postgres_claims_read_only_their_partial_indexes(pg_database_url: str) -> None:
    store = open_store(Settings(database_url=pg_database_url))
    await store.migrate()
    try:
        await store.insert_jobs([new_job() for _ in range(30)], NOW)
        await store.insert_jobs([keyed(k) for k in "abc" for _ in range(10)], NOW)
        await store.set_limits(FlowLimit("queue", "default", key_concurrency=2), NOW, KEYS)
        params = {**CLAIM_PARAMS, "lease_until": 0}
        async with await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True) as conn:
            await conn.execute(  # among many finished jobs, as test_queues.py's test
                "INSERT INTO jobs (id, task, queue, payload, status, max_attempts, attempt,"
                " run_at, created_at, updated_at, finished_at)"
                " SELECT 'done-' || n, 't', 'default', '{}', 'completed', 3, 1, 0, 0, 0, 0"
                " FROM generate_series(1, 20000) AS n"
            )
            await conn.execute("ANALYZE jobs")
            for name in ("claim_lock", "claim_jobs", "claim_keyed"):
                cur = await conn.execute("EXPLAIN " + PG_QUERIES[name].text, params)
                found = "\n".join(str(row[0]) for row in await cur.fetchall())
                assert "jobs_due_keyed" in found, found
                assert "Seq Scan on jobs " not in found, found
        assert Counter(await take(store, 20)) == {None: 14, "a": 2, "b": 2, "c": 2}
    finally:
        await store.close()


async def test_two_claims_of_one_worker_at_one_instant_each_take_a_keyed_job(
    store: Store,
) -> None:
    """A test's clock, or a coarse one, gives one worker's claims the same time: the second
    is not mistaken for part of the first (found by the state machine on PostgreSQL)."""
    await store.insert_jobs([keyed("a") for _ in range(2)], NOW)
    first = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    second = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    assert len(first) == len(second) == 1 and first[0].id != second[0].id
