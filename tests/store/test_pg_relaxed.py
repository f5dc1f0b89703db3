"""PostgreSQL: the writes that need not wait for the disk, and a batch of outcomes as one
statement. Against a real database; each test gets its own."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import IdempotencyKeyTaken, IdempotencyRecord, JobRef
from jobhandler.store.dialect import Refused, Step
from jobhandler.store.postgres.dialect import QUERIES, PostgresStore
from jobhandler.store.queries import Query

NOW = 1_900_000_000.0
LEASE = 30.0


def new_job(queue: str = "default") -> NewJob:
    return NewJob(
        id=str(uuid.uuid4()),
        task="t",
        queue=queue,
        payload=None,
        priority=0,
        max_attempts=3,
        timeout=None,
        run_at=NOW,
    )


async def rows(url: str, query: str, *params: object) -> list[dict[str, Any]]:
    """One statement on a connection of its own: what any other session sees."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall()


async def claimed(pg: PostgresStore, n: int, queue: str = "default") -> list[str]:
    jobs = [new_job(queue) for _ in range(n)]
    await pg.insert_jobs(jobs, NOW)
    taken = await pg.claim_jobs([queue], "w1", n, NOW, LEASE)
    assert len(taken) == n
    return [j.id for j in jobs]


async def test_a_mixed_batch_is_one_statement_with_an_answer_per_outcome(
    pg: PostgresStore, pg_database_url: str
) -> None:
    done, failed, stale, rescued, early, retried, released = await claimed(pg, 7)
    waiting, queued = new_job(), new_job()
    await pg.insert_jobs([waiting, queued], NOW)
    lease_end = NOW + LEASE
    outcomes = [
        Outcome(done, 1, Transition.COMPLETE, result={"b": 1, "a": ['"q"', "\\"]}),
        Outcome(failed, 1, Transition.FAIL, error="boom", traceback="tb"),
        Outcome(stale, 0, Transition.COMPLETE),  # an earlier attempt: fenced off
        Outcome(
            rescued, 1, Transition.RESCUE, run_at=NOW + 5, only_if_lease_expired_by=lease_end + 1
        ),
        Outcome(early, 1, Transition.RESCUE, only_if_lease_expired_by=lease_end - 1),  # live lease
        Outcome(retried, 1, Transition.RETRY_LATER, error="again", run_at=NOW + 60),
        Outcome(released, 1, Transition.RELEASE),
        Outcome(waiting.id, 0, Transition.CANCEL),  # two source statuses beside one
        Outcome(queued.id, 0, Transition.COMPLETE),  # not running: the wrong status
        Outcome(str(uuid.uuid4()), 1, Transition.COMPLETE),  # no such job
    ]
    applied = await pg.finish_jobs(outcomes, NOW + 1)
    assert applied == [True, True, False, True, False, True, True, True, False, False]

    found = {
        r["id"]: r
        for r in await rows(
            pg_database_url,
            "SELECT id, status, result::text AS result, error, traceback, run_at, finished_at,"
            " updated_at, uncounted, lease_expires_at FROM jobs",
        )
    }
    assert found[done]["status"] == "completed"
    assert found[done]["result"] == '{"b":1,"a":["\\"q\\"","\\\\"]}'  # as written, in order
    assert (found[done]["finished_at"], found[done]["updated_at"]) == (NOW + 1, NOW + 1)
    assert found[done]["lease_expires_at"] is None
    assert (found[failed]["status"], found[failed]["error"], found[failed]["traceback"]) == (
        "failed",
        "boom",
        "tb",
    )
    assert found[stale]["status"] == found[early]["status"] == "processing"
    assert found[stale]["lease_expires_at"] == found[early]["lease_expires_at"] == lease_end
    assert (found[rescued]["status"], found[rescued]["run_at"]) == ("scheduled", NOW + 5)
    assert found[rescued]["finished_at"] is None
    assert (found[retried]["status"], found[retried]["run_at"]) == ("scheduled", NOW + 60)
    assert found[retried]["error"] == "again"
    assert (found[released]["status"], found[released]["uncounted"]) == ("queued", 1)
    assert found[released]["run_at"] == NOW  # no run_at given: kept
    assert found[waiting.id]["status"] == "cancelled"
    assert found[queued.id]["status"] == "queued"

    # One statement: the counters' trigger ran once for the batch, so the two jobs it moved
    # to scheduled are one delta, not one per outcome.
    deltas = await rows(
        pg_database_url, "SELECT n FROM job_counts WHERE status = 'scheduled' AND n <> 0"
    )
    assert deltas == [{"n": 2}]


async def test_a_batch_naming_a_job_twice_sees_its_own_earlier_outcome(
    pg: PostgresStore,
) -> None:
    first, other = await claimed(pg, 2)
    outcomes = [
        Outcome(first, 1, Transition.RETRY_LATER, run_at=NOW + 60),
        Outcome(other, 1, Transition.COMPLETE),
        Outcome(first, 1, Transition.COMPLETE),  # the job is scheduled by now: refused
    ]
    assert await pg.finish_jobs(outcomes, NOW + 1) == [True, True, False]
    job = await pg.get_job(first)
    assert job is not None and job.status is JobStatus.SCHEDULED


async def test_relaxed_units_commit_before_they_return(
    pg: PostgresStore, pg_database_url: str
) -> None:
    (job_id,) = await claimed(pg, 1)
    seen = await rows(pg_database_url, "SELECT status FROM jobs WHERE id = %s", job_id)
    assert seen == [{"status": "processing"}]
    reply = await pg.heartbeat("w1", [JobRef(job_id, 1)], NOW + 10, LEASE)
    assert not reply.lost
    seen = await rows(pg_database_url, "SELECT lease_expires_at FROM jobs WHERE id = %s", job_id)
    assert seen == [{"lease_expires_at": NOW + 10 + LEASE}]
    assert await pg.finish_jobs([Outcome(job_id, 1, Transition.COMPLETE)], NOW + 11) == [True]
    seen = await rows(pg_database_url, "SELECT status FROM jobs WHERE id = %s", job_id)
    assert seen == [{"status": "completed"}]


async def test_only_a_relaxed_unit_skips_the_wait_for_the_disk(pg: PostgresStore) -> None:
    setting = "SELECT current_setting('synchronous_commit') AS s"
    relaxed = Query("probe", setting, relaxed=True)
    strict = Query("probe", setting)
    for unit, expected in [
        ([Step(relaxed, {})], "off"),
        ([Step(relaxed, {}), Step(relaxed, {})], "off"),
        ([Step(strict, {})], "on"),
        ([Step(relaxed, {}), Step(strict, {})], "on"),  # one strict write makes the unit strict
    ]:
        done = await pg.dialect.run(unit, True)
        assert [d.rows for d in done] == [[{"s": expected}]] * len(unit)
    # Local to its transaction: the pooled connection is back to waiting for the disk.
    (done,) = await pg.dialect.run([Step(strict, {})], True)
    assert done.rows == [{"s": "on"}]


async def test_a_workflow_parents_outcome_skips_the_wait_for_the_disk(pg: PostgresStore) -> None:
    """A parent's finishing write carries the NOTIFY for its children: the unit stays relaxed,
    as any outcome."""
    (job_id,) = await claimed(pg, 1)
    outcome = Outcome(job_id, 1, Transition.COMPLETE, wakes=True, worker_id="w1")
    steps = pg.runs.finish_steps(outcome, NOW + 1)
    assert len(steps) == 2  # the outcome, then the wake-up
    probe = Query("probe", "SELECT current_setting('synchronous_commit') AS s", relaxed=True)
    done = (await pg.dialect.run([*steps, Step(probe, {})], True))[-1]
    assert done.rows == [{"s": "off"}]


async def test_a_unit_of_several_statements_is_all_or_nothing(
    pg: PostgresStore, pg_database_url: str
) -> None:
    (job_id,) = await claimed(pg, 1)
    finish = QUERIES["finish_job"]
    broken = Query("broken", "SELECT 1 / 0", relaxed=True)
    params = pg.runs.finish_params(Outcome(job_id, 1, Transition.COMPLETE), NOW + 1)
    with pytest.raises(Refused):  # a DataError, as the store reports one
        await pg.dialect.run([Step(finish, params), Step(broken, {})], True)
    seen = await rows(pg_database_url, "SELECT status FROM jobs WHERE id = %s", job_id)
    assert seen == [{"status": "processing"}]
    # The connection it used is fine for the next unit.
    assert await pg.finish_jobs([Outcome(job_id, 1, Transition.COMPLETE)], NOW + 2) == [True]


async def test_the_batch_finds_each_job_by_its_id_in_a_large_table(
    pg: PostgresStore, pg_database_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO jobs (id, task, queue, payload, status, max_attempts, run_at,"
            " created_at, updated_at) SELECT 'f' || n, 't', 'q', '{}', 'completed', 3,"
            " 0, 0, 0 FROM generate_series(1, 20000) AS n"
        )
        await conn.execute("ANALYZE jobs")
        # The plan a prepared statement settles on after a few runs, whatever the batch size.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        text = QUERIES["finish_jobs"].text
        names = sorted(set(_names(text)))
        await conn.execute(f"PREPARE batch AS {_numbered(text, names)}")
        cur = await conn.execute(f"EXPLAIN EXECUTE batch({', '.join(['NULL'] * len(names))})")
        plan = "\n".join(str(r[0]) for r in await cur.fetchall())
    assert "jobs_id_key" in plan, plan
    assert "Seq Scan on jobs" not in plan, plan


def _names(text: str) -> list[str]:
    return re.findall(r"%\((\w+)\)s", text)


def _numbered(text: str, names: list[str]) -> str:
    for i, name in enumerate(names, 1):
        text = text.replace(f"%({name})s", f"${i}")
    return text


async def test_units_that_fail_again_and_again_leave_the_connection_usable(
    pg: PostgresStore,
) -> None:
    """A unit that fails halfway (a taken Idempotency-Key) after its statements were run often
    enough to be prepared: the statements the server skipped must not be taken for prepared
    ones, or the next unit on that connection fails with "prepared statement does not exist"."""
    taken = IdempotencyRecord("anonymous", "taken", "f", False, (), NOW)
    await pg.insert_jobs([new_job()], NOW, idempotency=[taken])
    for n in range(12):
        with pytest.raises(IdempotencyKeyTaken):
            await pg.insert_jobs([new_job()], NOW, idempotency=[taken])
        fresh = IdempotencyRecord("anonymous", f"k{n}", "f", False, (), NOW)
        (job,) = await pg.insert_jobs([new_job()], NOW, idempotency=[fresh])
        assert job.status is JobStatus.QUEUED
