"""The store contract: every store passes these, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from jobhandler.model.errors import DuplicateJob, InvalidTransition, JobNotFound
from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import JobFilter, JobRef, WorkerInfo
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store

NOW = 1_900_000_000.0
LEASE = 30.0


def new_job(
    task: str = "t",
    queue: str = "default",
    priority: int = 0,
    run_at: float = NOW,
    payload: object = "p",
) -> NewJob:
    return NewJob(
        id=str(uuid.uuid4()),
        task=task,
        queue=queue,
        payload=payload,
        priority=priority,
        max_attempts=3,
        timeout=None,
        run_at=run_at,
    )


async def claim_one(store: Store, now: float = NOW) -> Outcome:
    (job,) = await store.claim_jobs(["default"], "w1", 1, now, LEASE)
    return Outcome(job.id, job.attempt, Transition.COMPLETE, result="ok")


async def test_migrate_twice_is_harmless(store: Store) -> None:
    await store.migrate()
    await store.ping()


async def test_insert_and_get_keep_payload_and_status(store: Store) -> None:
    payload = {"name": "ünïcode", "n": [1, 2.5, None, True], "big": 2**53 + 1}
    now_job, later_job = new_job(payload=payload), new_job(run_at=NOW + 60)
    inserted = await store.insert_jobs([now_job, later_job], NOW)
    assert [j.status for j in inserted] == [JobStatus.QUEUED, JobStatus.SCHEDULED]
    got = await store.get_job(now_job.id)
    assert got is not None
    assert got.payload == payload
    assert got.status is JobStatus.QUEUED
    assert got.attempt == 0 and got.created_at == NOW
    assert (await store.get_job(later_job.id)).status is JobStatus.SCHEDULED  # type: ignore[union-attr]
    assert await store.get_job("nope") is None


async def test_list_is_newest_first_with_filters_and_cursor(store: Store) -> None:
    jobs = [new_job(task="a" if i % 2 else "b", queue=f"q{i % 3}") for i in range(25)]
    for job in jobs:
        await store.insert_jobs([job], NOW)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_jobs(JobFilter(), 10, cursor)
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [j.id for j in reversed(jobs)]

    only_a = await store.list_jobs(JobFilter(task="a"), 100, None)
    assert [j.id for j in only_a.jobs] == [j.id for j in reversed(jobs) if j.task == "a"]
    q1 = await store.list_jobs(JobFilter(queue="q1"), 100, None)
    assert {j.queue for j in q1.jobs} == {"q1"} and len(q1.jobs) == 8
    statuses = JobFilter(statuses=frozenset({JobStatus.COMPLETED}))
    assert (await store.list_jobs(statuses, 100, None)).jobs == []
    with pytest.raises(ValueError):
        await store.list_jobs(JobFilter(), 10, "not-a-cursor")


async def test_claim_takes_due_jobs_by_priority_then_age(store: Store) -> None:
    low, high, later, other = (
        new_job(priority=0),
        new_job(priority=5),
        new_job(run_at=NOW + 10),
        new_job(queue="other"),
    )
    for job in (low, high, later, other):
        await store.insert_jobs([job], NOW)
    claimed = await store.claim_jobs(["default"], "w1", 10, NOW, LEASE)
    assert [j.id for j in claimed] == [high.id, low.id]
    assert all(j.status is JobStatus.PROCESSING and j.attempt == 1 for j in claimed)
    assert all(j.worker_id == "w1" and j.lease_expires_at == NOW + LEASE for j in claimed)
    assert await store.claim_jobs(["default"], "w1", 10, NOW, LEASE) == []
    (due,) = await store.claim_jobs(["default"], "w1", 10, NOW + 10, LEASE)
    assert due.id == later.id
    (theirs,) = await store.claim_jobs(["other", "default"], "w2", 10, NOW, LEASE)
    assert theirs.id == other.id


async def test_claim_respects_limit(store: Store) -> None:
    await store.insert_jobs([new_job() for _ in range(7)], NOW)
    assert len(await store.claim_jobs(["default"], "w1", 3, NOW, LEASE)) == 3
    assert len(await store.claim_jobs(["default"], "w1", 10, NOW, LEASE)) == 4
    assert await store.claim_jobs(["default"], "w1", 0, NOW, LEASE) == []


async def test_concurrent_claims_never_share_a_job(store: Store, database_url: str) -> None:
    await store.insert_jobs([new_job() for _ in range(300)], NOW)
    others = [open_store(Settings(database_url=database_url)) for _ in range(3)]
    try:

        async def drain(s: Store, worker: str) -> list[str]:
            ids: list[str] = []
            while batch := await s.claim_jobs(["default"], worker, 7, NOW, LEASE):
                ids += [j.id for j in batch]
            return ids

        results = await asyncio.gather(*(drain(s, f"w{i}") for i, s in enumerate([store, *others])))
    finally:
        for s in others:
            await s.close()
    claimed = [i for ids in results for i in ids]
    assert len(claimed) == 300 and len(set(claimed)) == 300


async def test_finish_is_fenced_by_attempt(store: Store) -> None:
    await store.insert_jobs([new_job()], NOW)
    outcome = await claim_one(store)
    stale = Outcome(outcome.job_id, outcome.attempt - 1, Transition.COMPLETE, result="stale")
    assert await store.finish_jobs([stale, outcome], NOW + 1) == [False, True]
    job = await store.get_job(outcome.job_id)
    assert job is not None
    assert job.status is JobStatus.COMPLETED and job.result == "ok" and job.finished_at == NOW + 1
    assert await store.finish_jobs([outcome], NOW + 2) == [False]  # terminal stays terminal


async def test_finish_is_fenced_by_the_runs_worker(store: Store) -> None:
    """The same attempt run by another worker (after a database crash lost a relaxed claim,
    the job is claimed again under it): only the worker that holds the job now writes."""
    await store.insert_jobs([new_job(), new_job()], NOW)
    first, second = await claim_one(store), await claim_one(store)  # both w1's
    assert await store.finish_jobs([replace(first, worker_id="w2")], NOW + 1) == [False]
    batch = [replace(second, worker_id="w2"), replace(first, worker_id="w1")]  # one statement
    assert await store.finish_jobs(batch, NOW + 1) == [False, True]
    assert await store.finish_jobs([replace(second, worker_id="w1")], NOW + 1) == [True]


async def test_retry_later_then_fail_records_error(store: Store) -> None:
    await store.insert_jobs([new_job()], NOW)
    first = await claim_one(store)
    retry = Outcome(
        first.job_id, 1, Transition.RETRY_LATER, error="boom", traceback="tb", run_at=NOW + 5
    )
    assert await store.finish_jobs([retry], NOW) == [True]
    job = await store.get_job(first.job_id)
    assert job is not None and job.status is JobStatus.SCHEDULED and job.error == "boom"
    assert await store.claim_jobs(["default"], "w1", 1, NOW + 1, LEASE) == []
    (again,) = await store.claim_jobs(["default"], "w1", 1, NOW + 5, LEASE)
    assert again.attempt == 2
    assert await store.finish_jobs([Outcome(again.id, 2, Transition.FAIL, error="x")], NOW + 6) == [
        True
    ]
    job = await store.get_job(again.id)
    assert job is not None and job.status is JobStatus.FAILED and job.finished_at == NOW + 6


async def test_release_does_not_use_up_an_attempt(store: Store) -> None:
    await store.insert_jobs([new_job()], NOW)
    claimed = await claim_one(store)
    assert await store.finish_jobs([Outcome(claimed.job_id, 1, Transition.RELEASE)], NOW) == [True]
    job = await store.get_job(claimed.job_id)
    assert job is not None
    assert job.status is JobStatus.QUEUED and job.attempt == 1 and job.attempts_used == 0


async def test_heartbeat_extends_leases_and_reports_lost_and_cancelled(store: Store) -> None:
    await store.insert_jobs([new_job(), new_job()], NOW)
    a, b = await store.claim_jobs(["default"], "w1", 2, NOW, LEASE)
    reply = await store.heartbeat("w1", [JobRef(a.id, 1), JobRef(b.id, 1)], NOW + 10, LEASE)
    assert reply.lost == frozenset() and reply.cancel == frozenset()
    assert (await store.get_job(a.id)).lease_expires_at == NOW + 10 + LEASE  # type: ignore[union-attr]

    await store.request_cancel(b.id, NOW + 11)
    reply = await store.heartbeat("w1", [JobRef(a.id, 1), JobRef(b.id, 1)], NOW + 12, LEASE)
    assert reply.cancel == {b.id}
    assert await store.cancel_requests("w1", [JobRef(a.id, 1), JobRef(b.id, 1)]) == {b.id}

    reply = await store.heartbeat("w1", [JobRef(a.id, 7)], NOW + 13, LEASE)  # a stale attempt
    assert reply.lost == {a.id}


async def test_expired_leases_are_found_and_rescue_is_guarded(store: Store) -> None:
    await store.insert_jobs([new_job()], NOW)
    (job,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    assert await store.expired_jobs(NOW + LEASE - 1, 10) == []
    (expired,) = await store.expired_jobs(NOW + LEASE + 1, 10)
    assert expired.id == job.id
    # The worker heartbeats before the rescuer writes: the rescue must not apply.
    await store.heartbeat("w1", [JobRef(job.id, 1)], NOW + LEASE + 2, LEASE)
    rescue = Outcome(
        job.id,
        1,
        Transition.RESCUE,
        error="worker lost",
        run_at=NOW + LEASE + 1,
        only_if_lease_expired_by=NOW + LEASE + 1,
    )
    assert await store.finish_jobs([rescue], NOW + LEASE + 2) == [False]
    late = NOW + 3 * LEASE
    rescue = Outcome(
        job.id,
        1,
        Transition.RESCUE,
        error="worker lost",
        run_at=late,
        only_if_lease_expired_by=late,
    )
    assert await store.finish_jobs([rescue], late) == [True]
    (again,) = await store.claim_jobs(["default"], "w2", 1, late, LEASE)
    assert again.attempt == 2 and again.worker_id == "w2"


async def test_cancel_queued_running_and_terminal(store: Store) -> None:
    waiting, running = new_job(), new_job()
    await store.insert_jobs([running], NOW)
    await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    await store.insert_jobs([waiting], NOW)
    cancelled = await store.request_cancel(waiting.id, NOW + 1)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at == NOW + 1
    flagged = await store.request_cancel(running.id, NOW + 1)
    assert flagged.status is JobStatus.PROCESSING and flagged.cancel_requested
    with pytest.raises(InvalidTransition):
        await store.request_cancel(waiting.id, NOW + 2)
    with pytest.raises(JobNotFound):
        await store.request_cancel("missing", NOW)
    assert await store.claim_jobs(["default"], "w1", 5, NOW + 5, LEASE) == []


async def test_retry_starts_afresh_and_only_from_failed_or_cancelled(store: Store) -> None:
    job = new_job()
    await store.insert_jobs([job], NOW)
    with pytest.raises(InvalidTransition):
        await store.retry_job(job.id, NOW)
    await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    await store.finish_jobs([Outcome(job.id, 1, Transition.FAIL, error="x")], NOW)
    retried = await store.retry_job(job.id, NOW + 1)
    assert retried.status is JobStatus.QUEUED and retried.error is None
    assert retried.attempts_used == 0 and retried.attempt == 1
    with pytest.raises(JobNotFound):
        await store.retry_job("missing", NOW)


async def test_delete_only_terminal_jobs(store: Store) -> None:
    job = new_job()
    await store.insert_jobs([job], NOW)
    assert await store.delete_job(job.id) is False
    await store.request_cancel(job.id, NOW)
    assert await store.delete_job(job.id) is True
    assert await store.get_job(job.id) is None


async def test_progress_is_fenced_by_attempt_and_worker(store: Store) -> None:
    await store.insert_jobs([new_job()], NOW)
    (job,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    await store.record_progress(
        "w1", [(JobRef(job.id, 1), {"done": 3}), (JobRef(job.id, 0), "stale")], NOW
    )
    await store.record_progress("w2", [(JobRef(job.id, 1), "another worker's")], NOW)
    got = await store.get_job(job.id)
    assert got is not None and got.progress == {"done": 3}


async def test_workers_register_and_deregister(store: Store) -> None:
    info = WorkerInfo(
        id="w1",
        host="h",
        pid=1,
        queues=["default"],
        concurrency=4,
        started_at=NOW,
        last_seen_at=NOW,
    )
    await store.register_worker(info)
    (listed,) = await store.list_workers()
    assert listed.id == "w1" and listed.queues == ["default"]
    await store.heartbeat("w1", [], NOW + 5, LEASE)
    (listed,) = await store.list_workers()
    assert listed.last_seen_at == NOW + 5
    await store.deregister_worker("w1")
    assert await store.list_workers() == []


async def test_queue_stats_count_by_status(store: Store) -> None:
    await store.insert_jobs([new_job(), new_job(), new_job(queue="mail")], NOW)
    await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    stats = {s.queue: s.counts for s in await store.queue_stats()}
    assert stats == {"default": {"queued": 1, "processing": 1}, "mail": {"queued": 1}}


async def test_prune_deletes_old_terminal_jobs_in_bounded_batches(store: Store) -> None:
    jobs = {name: new_job() for name in ("done_old", "done_edge", "failed_old", "failed_new")}
    for job in jobs.values():
        await store.insert_jobs([job], NOW)
        (claimed,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
        assert claimed.id == job.id
    finished = {
        "done_old": (Transition.COMPLETE, NOW),
        "done_edge": (Transition.COMPLETE, NOW + 100),  # exactly at the cut-off: kept
        "failed_old": (Transition.FAIL, NOW + 40),
        "failed_new": (Transition.FAIL, NOW + 60),
    }
    for name, (transition, at) in finished.items():
        assert await store.finish_jobs([Outcome(jobs[name].id, 1, transition)], at) == [True]
    cancelled_old, waiting, running = new_job(), new_job(), new_job()
    await store.insert_jobs([cancelled_old], NOW)
    await store.request_cancel(cancelled_old.id, NOW)
    await store.insert_jobs([running], NOW)
    await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    await store.insert_jobs([waiting], NOW - 10_000)

    # At NOW + 200: completed jobs older than 100 s go, failed and cancelled older than 150 s.
    assert await store.prune(NOW + 200, 100, 150, 2) == 2
    assert await store.prune(NOW + 200, 100, 150, 2) == 1
    assert await store.prune(NOW + 200, 100, 150, 2) == 0
    assert await store.prune(NOW + 200, 100, 150, 0) == 0
    left = {j.id for j in (await store.list_jobs(JobFilter(), 100, None)).jobs}
    kept = {jobs["done_edge"].id, jobs["failed_new"].id, waiting.id, running.id}
    assert left == kept


async def test_listen_gives_a_stopper(store: Store) -> None:
    stop = await store.listen(lambda: None, lambda job_id: None)
    await stop()
    await store.ping()


async def test_finish_applies_a_mixed_batch_in_order(store: Store) -> None:
    await store.insert_jobs([new_job() for _ in range(5)], NOW)
    a, b, c, d, e = await store.claim_jobs(["default"], "w1", 5, NOW, LEASE)
    late = NOW + LEASE + 1
    batch = [
        Outcome(a.id, 1, Transition.COMPLETE, result={"x": [1, None]}),
        Outcome(b.id, 1, Transition.RETRY_LATER, error="boom", traceback="tb", run_at=NOW + 5),
        Outcome(
            c.id, 1, Transition.RESCUE, error="lost", run_at=late, only_if_lease_expired_by=late
        ),
        Outcome(d.id, 1, Transition.ABORT, error="cancelled"),
        Outcome(a.id, 1, Transition.COMPLETE, result="again"),  # already completed: refused
        Outcome(e.id, 1, Transition.RELEASE),
        Outcome(e.id, 1, Transition.ABORT),  # sees the release before it: queued, so refused
    ]
    assert await store.finish_jobs(batch, late) == [True, True, True, True, False, True, False]
    got = {j.id: j for j in (await store.list_jobs(JobFilter(), 10, None)).jobs}
    assert got[a.id].status is JobStatus.COMPLETED and got[a.id].result == {"x": [1, None]}
    assert got[b.id].status is JobStatus.SCHEDULED and got[b.id].run_at == NOW + 5
    assert got[b.id].finished_at is None and got[b.id].traceback == "tb"
    assert got[c.id].status is JobStatus.SCHEDULED and got[c.id].lease_expires_at is None
    assert got[d.id].status is JobStatus.CANCELLED and got[d.id].finished_at == late
    assert got[e.id].status is JobStatus.QUEUED and got[e.id].attempts_used == 0


async def test_insert_is_all_or_nothing(store: Store) -> None:
    first = new_job()
    await store.insert_jobs([first], NOW)
    fresh = new_job()
    with pytest.raises(DuplicateJob):
        await store.insert_jobs([fresh, first], NOW)  # the second id is taken
    assert await store.get_job(fresh.id) is None


async def test_oldest_first_listing_and_import_keep_whole_jobs(store: Store) -> None:
    jobs = [new_job(payload={"n": i}) for i in range(5)]
    await store.insert_jobs(jobs, NOW)
    await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    first = await store.list_jobs(JobFilter(), 3, None, oldest_first=True)
    rest = await store.list_jobs(JobFilter(), 3, first.next_cursor, oldest_first=True)
    originals = [*first.jobs, *rest.jobs]
    assert [j.id for j in originals] == [j.id for j in jobs] and rest.next_cursor is None

    await store.finish_jobs([Outcome(jobs[0].id, 1, Transition.COMPLETE, result=[1, "x"])], NOW)
    originals = (await store.list_jobs(JobFilter(), 10, None, oldest_first=True)).jobs
    for job in originals:
        await store.delete_job(job.id)  # only the finished one goes; import the rest afresh
    remaining = {j.id for j in (await store.list_jobs(JobFilter(), 10, None)).jobs}
    await store.import_jobs([j for j in originals if j.id not in remaining])
    assert (await store.list_jobs(JobFilter(), 10, None, oldest_first=True)).jobs[-1] == originals[
        0
    ]
    assert await store.get_job(jobs[0].id) == originals[0]


async def test_heartbeat_extends_only_the_runs_named(store: Store) -> None:
    await store.insert_jobs([new_job(), new_job()], NOW)
    kept, forgotten = await store.claim_jobs(["default"], "w1", 2, NOW, LEASE)
    await store.heartbeat("w1", [JobRef(kept.id, 1)], NOW + 20, LEASE)
    (expired,) = await store.expired_jobs(NOW + LEASE + 1, 10)
    assert expired.id == forgotten.id  # a run the worker lost track of is left to expire


async def test_heartbeat_tells_a_forgotten_worker_to_register_again(store: Store) -> None:
    assert (await store.heartbeat("ghost", [], NOW, LEASE)).registered is False
    info = WorkerInfo(
        id="w1",
        host="h",
        pid=1,
        queues=["default"],
        concurrency=1,
        started_at=NOW,
        last_seen_at=NOW,
    )
    await store.register_worker(info)
    assert (await store.heartbeat("w1", [], NOW, LEASE)).registered is True


async def test_one_leader_per_role_until_its_lease_runs_out(store: Store) -> None:
    assert await store.try_lead("maintenance", "a", NOW, 10)
    assert not await store.try_lead("maintenance", "b", NOW + 5, 10)
    assert await store.try_lead("other-role", "b", NOW + 5, 10)  # roles are independent
    assert await store.try_lead("maintenance", "a", NOW + 9, 10)  # renewed: until NOW + 19
    assert not await store.try_lead("maintenance", "b", NOW + 15, 10)
    assert await store.try_lead("maintenance", "b", NOW + 20, 10)  # a's lease ran out
    assert not await store.try_lead("maintenance", "a", NOW + 21, 10)


async def test_racing_candidates_elect_exactly_one(store: Store) -> None:
    won = await asyncio.gather(*(store.try_lead("r", f"w{i}", NOW, 10) for i in range(8)))
    assert sum(won) == 1


async def test_resign_frees_the_role_at_once_and_only_for_its_holder(store: Store) -> None:
    assert await store.try_lead("maintenance", "a", NOW, 10)
    await store.resign("maintenance", "b")  # not the holder: changes nothing
    assert not await store.try_lead("maintenance", "b", NOW + 1, 10)
    await store.resign("maintenance", "a")
    assert await store.try_lead("maintenance", "b", NOW + 1, 10)
    await store.resign("nobody-leads-this", "a")  # harmless


async def test_an_import_that_meets_a_taken_id_imports_nothing(store: Store) -> None:
    (kept,) = await store.insert_jobs([new_job()], NOW)
    with pytest.raises(DuplicateJob):
        await store.import_jobs([replace(kept, id=str(uuid.uuid4())), kept])
    assert [j.id for j in (await store.list_jobs(JobFilter(), 10, None)).jobs] == [kept.id]


async def test_interrupted_runs_are_counted_and_free_only_up_to_a_bound(store: Store) -> None:
    from jobhandler.model.jobs import FREE_INTERRUPTIONS

    job = new_job()
    await store.insert_jobs([replace(job, max_attempts=100)], NOW)
    for _ in range(FREE_INTERRUPTIONS + 2):
        (claimed,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
        released = Outcome(claimed.id, claimed.attempt, Transition.RELEASE)
        assert await store.finish_jobs([released], NOW) == [True]
    got = await store.get_job(job.id)
    assert got is not None and got.interrupted == FREE_INTERRUPTIONS + 2
    assert got.attempts_used == 2  # the two past the bound used an attempt each
    outcomes = [a.outcome for a in await store.job_attempts(job.id)]
    assert outcomes == ["interrupted"] * (FREE_INTERRUPTIONS + 2)
