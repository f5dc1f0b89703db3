"""A SQLite store whose disk fills up (a tmpfs the test mounts and fills): each kind of write in
the low-space state, refused (new data, new work) or let through (what frees room, or ends a run
already started), and the state's end once the disk has room again. The server's side, over
HTTP and with a worker, is tests/acceptance/test_disk_full.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from jobhandler.model.errors import DiskFull
from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import JobFilter, JobRef, WorkerInfo
from jobhandler.store.sqlite.dialect import SQLiteStore
from tests.conftest import MiB, fill

NOW = 1_900_000_000.0


def new_job() -> NewJob:
    return NewJob(str(uuid.uuid4()), "t", "default", {"n": 1}, 0, 3, None, NOW)


async def until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        await asyncio.sleep(0.02)


async def test_a_full_disk_refuses_new_work_and_lets_through_what_frees_room(
    small_disk: Path,
) -> None:
    store = SQLiteStore(str(small_disk / "jobs.db"), reserve_bytes=2 * MiB)
    await store.migrate()
    reserve = small_disk / "jobs.db-reserve"
    other = SQLiteStore(store.path, reserve_bytes=2 * MiB)  # as another process's would be
    try:
        await until(lambda: reserve.exists() and reserve.stat().st_size == 2 * MiB)
        await other.ping()
        jobs = [new_job() for _ in range(6)]
        await store.insert_jobs(jobs, NOW)
        await store.register_worker(WorkerInfo("w1", "h", 1, ["default"], 2, NOW, NOW))
        claimed = await store.claim_jobs(["default"], "w1", 2, NOW, 30)
        refs = [JobRef(job.id, job.attempt) for job in claimed]
        waiting = [job.id for job in jobs if job.id not in {ref.id for ref in refs}]

        filler = small_disk / "filler"
        fill(filler)
        with pytest.raises(DiskFull):
            for _ in range(1000):  # the WAL may have room for a few
                await store.insert_jobs([new_job()], NOW)
        assert store.disk_full() and not reserve.exists()
        # The other store has written nothing since: it sees the reserve gone, and stops
        # taking new work before it eats the room.
        await until(other.disk_full, timeout=3)
        with pytest.raises(DiskFull):
            await other.claim_jobs(["default"], "w2", 2, NOW, 30)

        # New data and new work: refused before they reach the file.
        with pytest.raises(DiskFull, match="disk full"):
            await store.insert_jobs([new_job()], NOW)
        with pytest.raises(DiskFull):
            await store.claim_jobs(["default"], "w1", 2, NOW, 30)

        # Ends of runs already started, and their leases.
        reply = await store.heartbeat("w1", refs, NOW + 1, 30)
        assert not reply.lost
        await store.record_progress("w1", [(refs[0], 0.5)], NOW + 1)
        done = [Outcome(ref.id, ref.attempt, Transition.COMPLETE, result="ok") for ref in refs]
        assert await store.finish_jobs(done, NOW + 2) == [True, True]

        # What an operator makes room with.
        assert (await store.request_cancel(waiting[0], NOW + 2)).status == JobStatus.CANCELLED
        with pytest.raises(DiskFull):
            await store.retry_job(waiting[0], NOW + 2)  # a retry is new work
        assert await store.delete_job(waiting[0])
        cancelled = await store.bulk_step("cancel", JobFilter(), 0, 100, NOW + 3)
        assert cancelled.changed == len(waiting) - 1
        deleted = await store.bulk_step(
            "delete", JobFilter(statuses=frozenset({JobStatus.CANCELLED})), 0, 100, NOW + 3
        )
        assert deleted.changed == len(waiting) - 1
        assert await store.prune(NOW + 10, 0, 0, 100) == 2  # the two completed runs
        await store.prune_keys(NOW + 10, NOW + 10, 100)
        assert await store.try_lead("maintenance", "w1", NOW + 10, 30)
        await store.resign("maintenance", "w1")
        await store.set_paused("default", True, NOW + 10)
        await store.deregister_worker("w1")
        assert await store.count_jobs(JobFilter(), 100) == 0

        filler.unlink()
        await until(lambda: not store.disk_full() and not other.disk_full(), timeout=5)
        assert reserve.stat().st_size == 2 * MiB
        await other.set_paused("default", False, NOW + 11)
        (job,) = await store.insert_jobs([new_job()], NOW + 11)
        assert job.status == JobStatus.QUEUED
        assert [j.id for j in await other.claim_jobs(["default"], "w2", 2, NOW + 11, 30)] == [
            job.id
        ]
    finally:
        await other.close()
        await store.close()


async def test_a_reserve_deleted_by_hand_is_a_full_disk_until_it_is_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process that ran out freed it, or an operator did: this process stops taking
    new work too, within a second, and takes it again once the reserve is back in place."""
    store = SQLiteStore(str(tmp_path / "jobs.db"), reserve_bytes=64 * 1024)
    await store.migrate()
    reserve = tmp_path / "jobs.db-reserve"
    try:
        await until(reserve.exists)
        reserve.unlink()
        entered = time.monotonic()
        # This disk has room: the store makes the reserve again at its next look and leaves.
        await until(reserve.exists, timeout=5)
        assert time.monotonic() - entered < 3
        await until(lambda: not store.disk_full())
        await store.insert_jobs([new_job()], NOW)
    finally:
        await store.close()
    said = [r.getMessage() for r in caplog.records if r.name == "jobhandler.store"]
    assert any("the disk is full; freed the 0.0 MiB reserve" in m for m in said), said
    assert any("disk space is back" in m for m in said), said


async def test_a_store_without_a_reserve_makes_no_file(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(str(tmp_path / "jobs.db"))
    await store.migrate()
    try:
        await store.insert_jobs([new_job()], NOW)
        assert not (tmp_path / "jobs.db-reserve").exists()
        assert not store.disk_full()
    finally:
        await store.close()
