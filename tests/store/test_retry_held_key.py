"""A retry that another job's hold on the unique key blocks: refused before any write, with
the holder named, and skipped by a bulk retry that retries every other job; on both stores."""

from __future__ import annotations

import asyncio

import pytest

from jobhandler.model.errors import InvalidTransition, UniqueKeyHeld
from jobhandler.model.jobs import Job, JobStatus, Outcome, Transition
from jobhandler.model.records import JobFilter
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store
from tests.store.test_unique_contract import NOW, new_job


async def failed(store: Store, *keys: tuple[str | None, float | None]) -> list[Job]:
    """One failed job per (key, window end), one after the other (so several hold a key in
    turn, as jobs that failed one by one)."""
    jobs = []
    for key, until in keys:
        (job,) = await store.insert_jobs([new_job(key, until)], NOW)
        (claimed,) = await store.claim_jobs(["default"], "w1", 1, NOW, 30)
        outcome = Outcome(job.id, claimed.attempt, Transition.FAIL, error="boom")
        assert claimed.id == job.id and await store.finish_jobs([outcome], NOW) == [True]
        jobs.append(job)
    return jobs


async def test_a_retry_is_refused_while_a_live_job_holds_the_key(store: Store) -> None:
    (old,) = await failed(store, ("k", None))
    before = await store.get_job(old.id)
    holder = new_job("k")
    await store.insert_jobs([holder], NOW)
    with pytest.raises(UniqueKeyHeld) as refused:
        await store.retry_job(old.id, NOW + 5)
    assert refused.value.holder == holder.id and refused.value.status == "failed"
    assert holder.id in str(refused.value) and "'k'" in str(refused.value)
    assert isinstance(refused.value, InvalidTransition)  # a 409, as other refused actions
    assert await store.get_job(old.id) == before  # nothing was written
    with pytest.raises(InvalidTransition) as not_retryable:  # the other refusal is as it was
        await store.retry_job(holder.id, NOW + 5)
    assert not isinstance(not_retryable.value, UniqueKeyHeld)
    assert await store.request_cancel(holder.id, NOW + 6)  # the holder ends: the key is free
    retried = await store.retry_job(old.id, NOW + 7)
    assert retried.status is JobStatus.QUEUED and retried.error is None


async def test_a_windowed_key_blocks_a_retry_as_it_blocks_a_submit(store: Store) -> None:
    (old,) = await failed(store, ("w", NOW + 10))
    assert (await store.retry_job(old.id, NOW + 1)).status is JobStatus.QUEUED  # its own window
    await store.request_cancel(old.id, NOW + 2)
    taker = new_job("w", until=NOW + 80)
    assert (await store.insert_jobs([taker], NOW + 20))[0].id == taker.id  # the window ran out
    with pytest.raises(UniqueKeyHeld) as refused:
        await store.retry_job(old.id, NOW + 30)
    assert refused.value.holder == taker.id and refused.value.status == "cancelled"
    assert (await store.get_job(old.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert (await store.retry_job(old.id, NOW + 81)).status is JobStatus.QUEUED  # it ran out


async def bulk_retry(store: Store, limit: int) -> tuple[int, dict[str, str]]:
    """Every step of a bulk retry over the failed jobs: how many changed, and the skipped."""
    total, after, skipped = 0, 0, {}
    failed_only = JobFilter(statuses=frozenset({JobStatus.FAILED}))
    while True:
        step = await store.bulk_step("retry", failed_only, after, limit, NOW + 1)
        total += step.changed
        skipped.update(step.skipped)
        if step.next_after is None:
            return total, skipped
        after = step.next_after


@pytest.mark.parametrize("limit", [1, 2, 1000])
async def test_a_bulk_retry_skips_the_jobs_whose_key_is_held(store: Store, limit: int) -> None:
    # a: its key held by a live job; b1 and b2 share a key no one holds; c has none; d: its
    # key's window is another job's; e: its own window.
    a, b1, b2, c, d, e = await failed(
        store, ("a", None), ("b", None), ("b", None), (None, None), ("d", NOW), ("e", NOW + 60)
    )
    holder, taker = new_job("a"), new_job("d", until=NOW + 60)
    await store.insert_jobs([holder, taker], NOW + 1)
    changed, skipped = await bulk_retry(store, limit)
    assert changed == 3
    assert skipped == {a.id: holder.id, b2.id: b1.id, d.id: taker.id}
    statuses = await store.job_statuses([j.id for j in (a, b1, b2, c, d, e)])
    assert [statuses[j.id] for j in (a, b1, b2, c, d, e)] == [
        JobStatus.FAILED,
        JobStatus.QUEUED,
        JobStatus.FAILED,
        JobStatus.QUEUED,
        JobStatus.FAILED,
        JobStatus.QUEUED,
    ]


async def test_concurrent_retries_of_one_key_retry_one_job(database_url: str) -> None:
    """Separate stores racing, as separate servers would: one retry wins, the other is
    refused naming it (on PostgreSQL the loser's guard read ran before the winner's commit)."""
    stores = [open_store(Settings(database_url=database_url)) for _ in range(2)]
    await stores[0].migrate()
    try:
        for round_ in range(5):
            key = f"race-{round_}"
            first, second = await failed(stores[0], (key, None), (key, None))
            answers = await asyncio.gather(
                stores[0].retry_job(first.id, NOW + 1),
                stores[1].retry_job(second.id, NOW + 1),
                return_exceptions=True,
            )
            won = [a for a in answers if isinstance(a, Job)]
            lost = [a for a in answers if isinstance(a, UniqueKeyHeld)]
            assert len(won) == len(lost) == 1, answers
            assert lost[0].holder == won[0].id
            await stores[0].request_cancel(won[0].id, NOW + 2)
    finally:
        for s in stores:
            await s.close()
