"""A big submit (COPY on PostgreSQL, from ``wire.COPY_FROM`` jobs) stores and refuses exactly
what a small one does, on both stores."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from jobhandler.model.errors import DuplicateJob
from jobhandler.model.jobs import JobStatus, NewJob
from jobhandler.model.records import JobFilter
from jobhandler.store import Store
from jobhandler.store.postgres.dialect import PostgresStore
from jobhandler.store.postgres.wire import COPY_FROM

NOW = 1_900_000_000.0
BIG = COPY_FROM + 6


def new_job(payload: object, run_at: float = NOW, unique_key: str | None = None) -> NewJob:
    return NewJob(
        id=str(uuid.uuid4()),
        task="t",
        queue="default",
        payload=payload,
        priority=0,
        max_attempts=3,
        timeout=None,
        run_at=run_at,
        unique_key=unique_key,
    )


# Payloads COPY's text format must carry unchanged: tabs, newlines, backslashes, quotes,
# Unicode, key order, big and negative numbers, null.
PAYLOADS: list[object] = [
    'tab\there\nnew line \\ back \\N "quoted" ünï €',
    {"z": 1, "a": [1, 2.5, None, True, False], "\\": "\t"},
    -(2**62),
    2**80,
    None,
    [],
    {},
    1.5e-300,
]


async def test_a_big_batch_keeps_every_payload_and_the_submit_order(store: Store) -> None:
    jobs = [new_job(PAYLOADS[i % len(PAYLOADS)], NOW + (i % 2) * 60) for i in range(BIG)]
    inserted = await store.insert_jobs(jobs, NOW)
    assert [j.id for j in inserted] == [j.id for j in jobs]
    page = await store.list_jobs(JobFilter(), 1000, None, oldest_first=True)
    assert [j.id for j in page.jobs] == [j.id for j in jobs]  # seq follows the batch's order
    for stored, job in zip(page.jobs, jobs, strict=True):
        assert stored.payload == job.payload
        if isinstance(job.payload, dict):  # key order survives too
            assert list(stored.payload) == list(job.payload)
        assert stored.status is (JobStatus.SCHEDULED if job.run_at > NOW else JobStatus.QUEUED)
        assert stored.created_at == NOW and stored.attempt == 0


async def test_a_big_batch_with_a_taken_id_stores_nothing(store: Store) -> None:
    (first,) = await store.insert_jobs([new_job("first")], NOW)
    jobs = [new_job(i) for i in range(BIG)]
    jobs[BIG // 2] = NewJob(first.id, "t", "default", "again", 0, 3, None, NOW)
    with pytest.raises(DuplicateJob):
        await store.insert_jobs(jobs, NOW)
    page = await store.list_jobs(JobFilter(), 1000, None)
    assert [j.id for j in page.jobs] == [first.id]


async def test_a_big_batch_with_unique_keys_skips_the_held_ones(store: Store) -> None:
    (holder,) = await store.insert_jobs([new_job("holder", unique_key="k")], NOW)
    jobs = [new_job(i) for i in range(BIG)] + [new_job("repeat", unique_key="k")]
    inserted = await store.insert_jobs(jobs, NOW)
    assert inserted[-1].id == holder.id  # answered with the key's holder
    assert [j.id for j in inserted[:-1]] == [j.id for j in jobs[:-1]]
    page = await store.list_jobs(JobFilter(), 1000, None)
    assert len(page.jobs) == BIG + 1


async def test_a_big_batch_wakes_a_listener(pg: PostgresStore, pg_database_url: str) -> None:
    submitted = asyncio.Event()
    stop = await pg.listen(submitted.set, lambda _: None)
    other = PostgresStore(pg_database_url)
    try:
        await asyncio.wait_for(submitted.wait(), 10)  # said once it listens
        submitted.clear()
        await other.insert_jobs([new_job(i) for i in range(BIG)], NOW)
        await asyncio.wait_for(submitted.wait(), 10)
    finally:
        await stop()
        await other.close()
