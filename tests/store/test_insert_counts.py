"""Kept queue counts stay exact through every way a job goes in, on both stores.

SQLite counts an insert once per statement, in the unit of work that inserts (migration 012,
``Dialect._counted``); PostgreSQL by a statement-level trigger. Each test compares the kept
counts with a ``count(*) ... GROUP BY`` over the jobs table itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobhandler.model.errors import DuplicateJob
from jobhandler.model.jobs import NewJob, Outcome, Transition
from jobhandler.model.records import JobFilter, ScheduleView
from jobhandler.settings import Settings
from jobhandler.store import Store, migrations, open_store
from jobhandler.store.sqlite.dialect import SQLiteDialect, SQLiteStore

NOW = 1_900_000_000.0
LEASE = 30.0
TRUE_COUNTS = "SELECT queue, status, count(*) FROM jobs GROUP BY queue, status"


def new_job(
    queue: str = "default",
    run_at: float = NOW,
    key: str | None = None,
    until: float | None = None,
    job_id: str | None = None,
) -> NewJob:
    return NewJob(
        id=job_id or str(uuid.uuid4()),
        task="t",
        queue=queue,
        payload=1,
        priority=0,
        max_attempts=3,
        timeout=None,
        run_at=run_at,
        unique_key=key,
        unique_until=until,
    )


@pytest.fixture
async def counted(database_url: str) -> AsyncIterator[tuple[Store, str]]:
    store = open_store(Settings(database_url=database_url))
    await store.migrate()
    try:
        yield store, database_url
    finally:
        await store.close()


def table_counts(url: str) -> dict[str, dict[str, int]]:
    """What the kept counts must say, counted from the rows on a connection of its own."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows: list[Any] = conn.execute(TRUE_COUNTS).fetchall()
        finally:
            conn.close()
    else:
        with psycopg.connect(url) as pg:
            rows = pg.execute(TRUE_COUNTS).fetchall()
    found: dict[str, dict[str, int]] = {}
    for queue, status, n in rows:
        found.setdefault(queue, {})[status] = n
    return found


async def assert_exact(store: Store, url: str) -> dict[str, dict[str, int]]:
    kept = {s.queue: s.counts for s in await store.queue_stats(NOW)}
    assert kept == table_counts(url)
    return kept


async def test_a_batch_submit_is_counted_by_queue_and_status(
    counted: tuple[Store, str],
) -> None:
    store, url = counted
    batch = [new_job(f"q{i % 3}", run_at=NOW + (i % 2) * 100) for i in range(1000)]
    await store.insert_jobs(batch, NOW)
    kept = await assert_exact(store, url)
    assert sum(sum(c.values()) for c in kept.values()) == 1000
    assert kept["q0"] == {"queued": 167, "scheduled": 167}
    # A refused batch (a duplicate id) counts nothing: the count is in its transaction.
    with pytest.raises(DuplicateJob):
        await store.insert_jobs([new_job("q0"), batch[0]], NOW)
    assert await assert_exact(store, url) == kept


async def test_one_job_submits_are_counted_from_their_values(
    counted: tuple[Store, str],
) -> None:
    # No unique key: the insert cannot skip the job, so the count takes its queue and status
    # as values (count_added) instead of finding it again by id; one queue's row per submit.
    store, url = counted
    made = [new_job(f"q{i % 2}", run_at=NOW + (i % 3 == 0) * 100) for i in range(6)]
    for job in made:
        await store.insert_jobs([job], NOW)
    kept = await assert_exact(store, url)
    assert kept == {"q0": {"queued": 2, "scheduled": 1}, "q1": {"queued": 2, "scheduled": 1}}
    with pytest.raises(DuplicateJob):  # refused: nothing counted
        await store.insert_jobs([new_job("q0", job_id=made[0].id)], NOW)
    assert await assert_exact(store, url) == kept


async def test_a_job_skipped_on_a_held_live_key_is_not_counted(
    counted: tuple[Store, str],
) -> None:
    store, url = counted
    holder = new_job(key="k")
    await store.insert_jobs([holder, new_job("other")], NOW)
    twice = new_job(key="k3")
    second = [
        new_job(key="k"),  # held by holder: skipped
        new_job(key="k2"),
        new_job(key="k2"),  # held by the one before it in the same batch: skipped
        new_job(),
        replace(holder, queue="moved"),  # the holder itself, sent again: skipped
        twice,
        twice,  # the same job twice in a batch: the second skipped, the job counted once
    ]
    stored = await store.insert_jobs(second, NOW + 1)
    k2 = second[1].id
    assert [j.id for j in stored] == [holder.id, k2, k2, second[3].id, holder.id, *[twice.id] * 2]
    assert await assert_exact(store, url) == {
        "default": {"queued": 4},
        "other": {"queued": 1},
    }
    # Every job of a batch skipped: nothing counted.
    await store.insert_jobs([new_job(key="k"), new_job(key="k2")], NOW + 2)
    assert (await assert_exact(store, url))["default"] == {"queued": 4}


async def test_a_windowed_key_counts_only_the_job_that_took_it(
    counted: tuple[Store, str],
) -> None:
    store, url = counted
    first = new_job("w", key="win", until=NOW + 60)
    await store.insert_jobs([first], NOW)
    # Inserted, counted, then dropped again in the same transaction: counted out.
    again = [new_job("w", key="win", until=NOW + 61), new_job("w", key="win2", until=NOW + 61)]
    stored = await store.insert_jobs(again, NOW + 1)
    assert [j.id for j in stored] == [first.id, again[1].id]
    assert (await assert_exact(store, url))["w"] == {"queued": 2}
    # Its window over, the key is taken again by a new job.
    await store.insert_jobs([new_job("w", key="win", until=NOW + 200)], NOW + 100)
    assert (await assert_exact(store, url))["w"] == {"queued": 3}


async def test_an_import_and_a_fired_schedule_are_counted(counted: tuple[Store, str]) -> None:
    store, url = counted
    await store.insert_jobs([new_job() for _ in range(3)], NOW)
    claimed = await store.claim_jobs(["default"], "w1", 2, NOW, LEASE)
    await store.finish_jobs([Outcome(claimed[0].id, 1, Transition.FAIL, error="x")], NOW + 1)
    # As ``store copy`` brings jobs over: whatever their status, under a new id.
    jobs = (await store.list_jobs(JobFilter(), 10, None)).jobs
    await store.import_jobs([replace(j, id=str(uuid.uuid4()), queue="copied") for j in jobs])
    kept = await assert_exact(store, url)
    assert kept["copied"] == {"queued": 1, "processing": 1, "failed": 1}
    with pytest.raises(DuplicateJob):
        await store.import_jobs([replace(jobs[0], queue="copied")])
    schedule = ScheduleView("tick", "t", None, 60.0, "UTC", 1, "skip", False, NOW)
    await store.sync_schedules([schedule], NOW)
    assert await store.fire_schedule("tick", NOW, new_job("fired"), NOW + 60, NOW)
    # The loser of the compare-and-set inserts nothing and counts nothing.
    assert not await store.fire_schedule("tick", NOW, new_job("fired"), NOW + 60, NOW)
    assert (await assert_exact(store, url))["fired"] == {"queued": 1}


async def test_racing_submits_of_one_key_count_the_one_job_made(
    counted: tuple[Store, str],
) -> None:
    store, url = counted
    others = [open_store(Settings(database_url=url)) for _ in range(3)]
    try:
        batches = [[new_job("race", key="one"), new_job("race")] for _ in others]
        await asyncio.gather(*(s.insert_jobs(b, NOW) for s, b in zip(others, batches, strict=True)))
    finally:
        for other in others:
            await other.close()
    assert (await assert_exact(store, url))["race"] == {"queued": 4}


async def test_counts_stay_exact_through_claims_finishes_and_deletes(
    counted: tuple[Store, str],
) -> None:
    store, url = counted
    await store.insert_jobs([new_job(f"q{i % 2}", key=f"k{i % 5}") for i in range(40)], NOW)
    await store.insert_jobs([new_job(f"q{i % 2}") for i in range(40)], NOW)
    claimed = await store.claim_jobs(["q0", "q1"], "w1", 20, NOW, LEASE)
    ends = [Transition.COMPLETE, Transition.FAIL, Transition.RETRY_LATER, Transition.RELEASE]
    outcomes = [Outcome(j.id, j.attempt, ends[i % 4]) for i, j in enumerate(claimed)]
    await store.finish_jobs(outcomes, NOW + 1)
    await assert_exact(store, url)
    # A key freed by its job's end is taken again, and counted.
    await store.insert_jobs([new_job("q0", key=f"k{i}") for i in range(5)], NOW + 2)
    await assert_exact(store, url)
    ended = [o.job_id for o in outcomes if o.transition in (Transition.COMPLETE, Transition.FAIL)]
    for job_id in ended[:3]:
        assert await store.delete_job(job_id)
    await store.prune(NOW + 10_000, 1, 1, 100)
    await assert_exact(store, url)


async def test_an_upgraded_sqlite_database_keeps_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for migration in migrations.load("sqlite"):
        if migration.version <= 11:
            conn.executescript(migration.sql)
            conn.execute("INSERT INTO schema_version VALUES (?)", (migration.version,))
    # Counted at 011 by its row trigger, as an older release wrote them.
    conn.executemany(
        "INSERT INTO jobs (id, task, queue, payload, priority, max_attempts, run_at, status,"
        " created_at, updated_at) VALUES (?, 't', ?, '1', 0, 3, ?, ?, ?, ?)",
        [
            (str(uuid.uuid4()), f"q{i % 2}", NOW, status, NOW, NOW)
            for i, status in enumerate(["queued", "processing", "completed", "queued", "failed"])
        ],
    )
    before = conn.execute("SELECT * FROM queue_counts ORDER BY queue").fetchall()
    conn.close()
    url = f"sqlite:///{path}"
    store = SQLiteStore(str(path))
    try:
        await store.migrate()
        assert await store.schema_version() >= 12
        upgraded = sqlite3.connect(path)
        try:
            after = upgraded.execute("SELECT * FROM queue_counts ORDER BY queue").fetchall()
            triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            names = {row[0] for row in upgraded.execute(triggers)}
        finally:
            upgraded.close()
        assert [row[:7] for row in after] == before  # 013 added a column for 'waiting'
        assert all(row[7] == 0 for row in after)
        assert "jobs_count_insert" not in names and "jobs_count_update" in names
        await assert_exact(store, url)
        # Counted once after the upgrade: by the unit of work, no trigger left to count twice.
        await store.insert_jobs([new_job("q0"), new_job("q1", run_at=NOW + 5)], NOW)
        kept = await assert_exact(store, url)
        assert kept["q1"] == {"processing": 1, "queued": 1, "scheduled": 1}
    finally:
        await store.close()


def test_every_sqlite_insert_into_jobs_is_one_the_store_counts() -> None:
    """An insert into jobs that no unit of work follows with ``count_inserted`` would leave the
    counts short: the ones the store runs are these, each counted (see the tests above)."""
    inserting = {
        name
        for name, query in SQLiteDialect.queries.items()
        if "INSERT INTO jobs " in " ".join(query.text.split())
    }
    assert inserting == {
        "insert_jobs",
        "import_jobs",
        "insert_fired_job",
        "insert_workflow_job",
        "spawn_job",
    }
