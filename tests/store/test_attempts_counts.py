"""Attempt history, kept counts, the oldest waiting job and throughput: on both stores."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace

import pytest

from jobhandler.model.errors import JobNotFound
from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import JobFilter
from jobhandler.store import Store
from jobhandler.store.core import StoreCore

NOW = 1_900_000_000.0
LEASE = 30.0


def new_job(queue: str = "default", priority: int = 0, run_at: float = NOW) -> NewJob:
    return NewJob(
        id=str(uuid.uuid4()),
        task="t",
        queue=queue,
        payload="p",
        priority=priority,
        max_attempts=3,
        timeout=None,
        run_at=run_at,
    )


async def true_counts(store: Store) -> dict[str, dict[str, int]]:
    """What the counters must say: counted from the jobs themselves."""
    page = await store.list_jobs(JobFilter(), 1000, None)
    found: dict[str, Counter[str]] = {}
    for job in page.jobs:
        found.setdefault(job.queue, Counter())[job.status.value] += 1
    return {q: dict(c) for q, c in found.items()}


async def kept_counts(store: Store) -> dict[str, dict[str, int]]:
    return {s.queue: s.counts for s in await store.queue_stats(NOW)}


async def test_every_run_is_kept_with_its_error_after_a_retry_succeeds(store: Store) -> None:
    job = new_job()
    await store.insert_jobs([job], NOW)
    (run,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    retry = Outcome(job.id, run.attempt, Transition.RETRY_LATER, error="boom", traceback="tb")
    assert await store.finish_jobs([replace(retry, run_at=NOW + 1)], NOW + 0.5) == [True]
    (run,) = await store.claim_jobs(["default"], "w2", 1, NOW + 2, LEASE)
    # The run in progress shows last, unfinished.
    *_, current = await store.job_attempts(job.id)
    assert (current.attempt, current.worker_id, current.outcome) == (2, "w2", None)
    done = Outcome(job.id, run.attempt, Transition.COMPLETE, result="ok")
    assert await store.finish_jobs([done], NOW + 3) == [True]

    first, second = await store.job_attempts(job.id)
    assert (first.attempt, first.worker_id, first.started_at, first.finished_at) == (
        1,
        "w1",
        NOW,
        NOW + 0.5,
    )
    assert (first.outcome, first.error, first.traceback) == ("scheduled", "boom", "tb")
    assert (second.attempt, second.worker_id, second.outcome, second.error) == (
        2,
        "w2",
        "completed",
        None,
    )
    # The job itself shows only its last run; the history keeps the first one's error.
    got = await store.get_job(job.id)
    assert got is not None and got.error is None


async def test_rescued_and_refused_outcomes(store: Store) -> None:
    job = new_job()
    await store.insert_jobs([job], NOW)
    (run,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    lost = Outcome(
        job.id,
        run.attempt,
        Transition.RESCUE_FAIL,
        error="worker lost",
        only_if_lease_expired_by=NOW + 60,
    )
    # A stale outcome (wrong attempt) writes no history.
    assert await store.finish_jobs([replace(lost, attempt=9)], NOW + 60) == [False]
    assert await store.finish_jobs([lost], NOW + 60) == [True]
    (only,) = await store.job_attempts(job.id)
    assert (only.outcome, only.error, only.finished_at) == ("failed", "worker lost", NOW + 60)
    with pytest.raises(JobNotFound):
        await store.job_attempts("no-such-job")
    fresh = new_job()
    await store.insert_jobs([fresh], NOW)
    assert await store.job_attempts(fresh.id) == []


async def test_attempts_go_with_their_job(store: Store) -> None:
    job = new_job()
    await store.insert_jobs([job], NOW)
    (run,) = await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    retry = Outcome(job.id, run.attempt, Transition.RETRY_LATER, error="boom", run_at=NOW)
    await store.finish_jobs([retry], NOW)
    (run,) = await store.claim_jobs(["default"], "w2", 1, NOW, LEASE)
    await store.finish_jobs([Outcome(job.id, run.attempt, Transition.COMPLETE)], NOW)
    stored = await store.get_job(job.id)
    assert stored is not None and len(await store.job_attempts(job.id)) == 2
    assert await store.prune(NOW + 10, 1, 1, 10) == 1
    # The same job brought back (as store copy does) shows the run its row holds, and no
    # history left over from before it was pruned.
    await store.import_jobs([stored])
    (only,) = await store.job_attempts(job.id)
    assert (only.attempt, only.worker_id, only.outcome) == (2, "w2", "completed")
    assert await store.delete_job(job.id)
    with pytest.raises(JobNotFound):
        await store.job_attempts(job.id)


async def test_a_user_retry_and_a_cancel_keep_the_run_before_them(store: Store) -> None:
    job = new_job()
    await store.insert_jobs([job], NOW)
    await store.claim_jobs(["default"], "w1", 1, NOW, LEASE)
    await store.finish_jobs([Outcome(job.id, 1, Transition.FAIL, error="bad")], NOW + 1)
    await store.retry_job(job.id, NOW + 2)  # clears the job's error: the history keeps it
    await store.claim_jobs(["default"], "w2", 1, NOW + 3, LEASE)
    later = Outcome(job.id, 2, Transition.RETRY_LATER, error="again", run_at=NOW + 100)
    await store.finish_jobs([later], NOW + 4)
    await store.request_cancel(job.id, NOW + 5)  # cancelled while it waited for its retry
    runs = await store.job_attempts(job.id)
    assert [(a.attempt, a.worker_id, a.outcome, a.error, a.finished_at) for a in runs] == [
        (1, "w1", "failed", "bad", NOW + 1),
        (2, "w2", "scheduled", "again", NOW + 4),
    ]


async def test_kept_counts_follow_every_move(store: Store) -> None:
    mail = [new_job("mail") for _ in range(3)]
    await store.insert_jobs([new_job() for _ in range(5)] + mail, NOW)
    await store.insert_jobs([new_job(run_at=NOW + 100)], NOW)
    claimed = await store.claim_jobs(["default", "mail"], "w1", 4, NOW, LEASE)
    transitions = [Transition.COMPLETE, Transition.FAIL, Transition.RETRY_LATER, Transition.RELEASE]
    outcomes = [Outcome(j.id, j.attempt, t) for j, t in zip(claimed, transitions, strict=True)]
    await store.finish_jobs(outcomes, NOW + 1)
    failed = next(o.job_id for o in outcomes if o.transition is Transition.FAIL)
    await store.retry_job(failed, NOW + 2)
    (waiting, *_) = (await store.list_jobs(JobFilter(queue="mail"), 10, None)).jobs
    await store.request_cancel(waiting.id, NOW + 2)
    assert await kept_counts(store) == await true_counts(store)
    await store.prune(NOW + 10_000, 1, 1, 100)
    assert await kept_counts(store) == await true_counts(store)
    assert isinstance(store, StoreCore)
    await store.stats.compact_counts()  # PostgreSQL folds its deltas
    assert await kept_counts(store) == await true_counts(store)
    # A queue with nothing left in it is not listed.
    for job in (await store.list_jobs(JobFilter(queue="mail"), 10, None)).jobs:
        if job.status.terminal:
            await store.delete_job(job.id)
        else:
            await store.request_cancel(job.id, NOW)
            await store.delete_job(job.id)
    assert "mail" not in await kept_counts(store)


async def test_oldest_waiting_is_the_earliest_due_job_over_every_priority(store: Store) -> None:
    await store.insert_jobs(
        [
            new_job(priority=5, run_at=NOW - 10),
            new_job(priority=0, run_at=NOW - 30),  # the oldest, at the lowest priority
            new_job(priority=9, run_at=NOW + 50),
            new_job("later", run_at=NOW + 60),  # nothing due yet
        ],
        NOW - 100,
    )
    stats = {s.queue: s for s in await store.queue_stats(NOW)}
    assert stats["default"].oldest_waiting_at == NOW - 30
    assert stats["later"].oldest_waiting_at is None
    await store.claim_jobs(["default"], "w1", 3, NOW, LEASE)
    stats = {s.queue: s for s in await store.queue_stats(NOW)}
    assert stats["default"].oldest_waiting_at is None  # only the future one is left
    assert stats["default"].counts == {"processing": 2, "scheduled": 1}


async def test_throughput_counts_finished_jobs_per_minute_by_status(store: Store) -> None:
    jobs = [new_job() for _ in range(4)]
    await store.insert_jobs(jobs, NOW)
    claimed = await store.claim_jobs(["default"], "w1", 4, NOW, LEASE)
    minute = NOW - NOW % 60
    ends = [
        (Transition.COMPLETE, minute + 1),
        (Transition.COMPLETE, minute + 59),
        (Transition.FAIL, minute + 61),
        (Transition.RETRY_LATER, minute + 62),  # not finished: not counted
    ]
    for job, (transition, at) in zip(claimed, ends, strict=True):
        await store.finish_jobs([Outcome(job.id, job.attempt, transition, run_at=at + 60)], at)
    points = await store.throughput(minute)
    assert [(p.minute, p.counts) for p in points] == [
        (minute, {JobStatus.COMPLETED.value: 2}),
        (minute + 60, {JobStatus.FAILED.value: 1}),
    ]
    assert await store.throughput(minute + 120) == []
