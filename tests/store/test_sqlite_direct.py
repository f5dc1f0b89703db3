"""Small writes that do not fsync run on the loop's thread (store/sqlite/direct.py): they wait
for a lock held elsewhere like any other write, and they keep the WAL from growing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest

from jobhandler.model.jobs import NewJob, Outcome, Transition
from jobhandler.store.dialect import Step
from jobhandler.store.queries import Query
from jobhandler.store.sqlite.dialect import SQLiteStore

QUEUE = ["default"]


def new_job() -> NewJob:
    return NewJob(str(uuid.uuid4()), "t", "default", {"n": 1}, 0, 3, None, time.time())


async def test_a_worker_write_waits_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    """A claim finds the write lock taken (another process is mid-write): it is not refused
    and not lost, it waits on the store's thread and completes once the lock is let go."""
    path = str(tmp_path / "jobs.db")
    store = SQLiteStore(path)  # FULL: claims are relaxed, so they take the direct path
    await store.migrate()
    await store.insert_jobs([new_job()], time.time())
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_later() -> None:
        released.wait(5)
        holder.execute("COMMIT")

    releaser = threading.Thread(target=release_later)
    releaser.start()
    try:
        claim = asyncio.create_task(store.claim_jobs(QUEUE, "w1", 5, time.time(), 30))
        await asyncio.sleep(0)  # let it try the lock
        assert not claim.done()  # waiting, not failed with "database is locked"
        released.set()
        claimed = await asyncio.wait_for(claim, 10)
        assert len(claimed) == 1
    finally:
        released.set()
        releaser.join()
        holder.close()
        await store.close()


@pytest.mark.parametrize("level", ["NORMAL", "FULL"])
async def test_many_small_writes_keep_the_wal_bounded(tmp_path: Path, level: str) -> None:
    """Direct writes never checkpoint themselves; the store's thread does it behind them, so
    the WAL is reused instead of growing with every claim and outcome."""
    path = str(tmp_path / "jobs.db")
    store = SQLiteStore(path, synchronous=level)  # type: ignore[arg-type]
    await store.migrate()
    try:
        for _ in range(1200):
            await store.insert_jobs([new_job()], time.time())
            (job,) = await store.claim_jobs(QUEUE, "w1", 1, time.time(), 30)
            outcome = Outcome(job.id, job.attempt, Transition.COMPLETE, result=1)
            assert await store.finish_jobs([outcome], time.time()) == [True]
        # 3,600 commits of ~10 pages each: 140 MB of WAL if nothing checkpointed it (the file
        # keeps its largest size: a few MB).
        assert (tmp_path / "jobs.db-wal").stat().st_size < 16 * 2**20
        (stats,) = await store.queue_stats()
        assert stats.counts == {"completed": 1200}
    finally:
        await store.close()


async def test_another_loop_uses_the_store_through_its_thread(tmp_path: Path) -> None:
    """The direct connection belongs to the loop that used it first; a store used from a
    second loop (another thread) still works, through the store's thread."""
    store = SQLiteStore(str(tmp_path / "jobs.db"), synchronous="NORMAL")
    await store.migrate()
    try:
        await store.insert_jobs([new_job()], time.time())

        def other_loop() -> int:
            async def submit_and_claim() -> int:
                await store.insert_jobs([new_job()], time.time())
                return len(await store.claim_jobs(QUEUE, "w2", 5, time.time(), 30))

            return asyncio.run(submit_and_claim())

        assert await asyncio.to_thread(other_loop) == 2
    finally:
        await store.close()


async def test_a_relaxed_unit_on_the_stores_thread_skips_the_wait_for_the_disk(
    tmp_path: Path,
) -> None:
    """Too large for the direct path, a unit of relaxed statements (a claim or a batch of
    outcomes under load) still commits without an fsync; one strict statement makes the unit
    wait for the disk again, as a submit does."""
    store = SQLiteStore(str(tmp_path / "jobs.db"))  # FULL
    await store.migrate()
    probe = "SELECT synchronous AS level FROM pragma_synchronous"
    relaxed, strict = Query("probe", probe, relaxed=True), Query("probe", probe)
    # More rows than the direct path takes (direct.MAX_ROWS): the unit goes to the thread.
    pad = Step(Query("pad", "SELECT :n", relaxed=True), [{"n": n} for n in range(40)], True, True)
    normal, full = 1, 2
    try:
        for probed, expected in [
            (relaxed, normal),
            (strict, full),
            (relaxed, normal),
            (relaxed, normal),
            (strict, full),
        ]:
            (_, done) = await store.dialect.run([pad, Step(probed, {})], True)
            assert done.rows[0]["level"] == expected
    finally:
        await store.close()


async def test_a_batch_of_workflow_parents_outcomes_skips_the_wait_for_the_disk(
    tmp_path: Path,
) -> None:
    """A parent's finishing write carries the check that wakes workers for its children: the
    unit stays relaxed, as any batch of outcomes, and commits without an fsync."""
    store = SQLiteStore(str(tmp_path / "jobs.db"))  # FULL
    await store.migrate()
    probe = Query("probe", "SELECT synchronous AS level FROM pragma_synchronous", relaxed=True)
    outcome = Outcome(str(uuid.uuid4()), 1, Transition.COMPLETE, wakes=True, worker_id="w1")
    pad = Step(Query("pad", "SELECT :n", relaxed=True), [{"n": n} for n in range(40)], True, True)
    try:
        steps = store.runs.finish_steps(outcome, time.time())
        assert len(steps) == 2  # the outcome, then the wake-up check
        done = (await store.dialect.run([pad, *steps, Step(probe, {})], True))[-1]
        assert done.rows[0]["level"] == 1  # NORMAL
    finally:
        await store.close()
