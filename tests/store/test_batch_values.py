"""Batches keep every value as written, on both stores: text that array syntax gives meaning
to (quotes, backslashes, braces, commas, the word NULL, the empty string), JSON, numbers and
NULLs, through a batch submit and a batch of outcomes. On PostgreSQL both go as one array per
column (store/postgres/wire.py writes the array literals itself)."""

from __future__ import annotations

import uuid

from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.store import Store

NOW = 1_900_000_000.123456
LEASE = 30.0
AWKWARD = ['a"b', "back\\slash", "{x,y}", "NULL", "", " spaced ", "line\nbreak", "ünï, 😀"]


def new_job(n: int, payload: object) -> NewJob:
    return NewJob(
        id=str(uuid.uuid4()),
        task=f"task {AWKWARD[n % len(AWKWARD)]}",
        queue="default",
        payload=payload,
        priority=-n,
        max_attempts=3,
        timeout=0.25 * n if n else None,
        run_at=NOW,
        concurrency_key=AWKWARD[n % len(AWKWARD)] if n % 2 else None,
    )


async def test_a_batch_keeps_awkward_values(store: Store) -> None:
    payloads: list[object] = [
        {"text": t, "nested": {"z": [t, None, 1.5], "a": True}} for t in AWKWARD
    ]
    payloads += [None, 2**53 + 1, -0.5, "NULL", ["{", "}", ","]]
    jobs = [new_job(n, p) for n, p in enumerate(payloads)]
    await store.insert_jobs(jobs, NOW)
    for job in jobs:
        got = await store.get_job(job.id)
        assert got is not None
        assert (got.task, got.payload, got.priority, got.timeout, got.concurrency_key) == (
            job.task,
            job.payload,
            job.priority,
            job.timeout,
            job.concurrency_key,
        )

    claimed = await store.claim_jobs(["default"], "w1", len(jobs), NOW, LEASE)
    assert len(claimed) == len(jobs)
    outcomes = []
    for n, job in enumerate(claimed):
        text = AWKWARD[n % len(AWKWARD)]
        if n % 3 == 0:
            outcomes.append(Outcome(job.id, job.attempt, Transition.COMPLETE, result=[text]))
        elif n % 3 == 1:
            failed = Outcome(job.id, job.attempt, Transition.FAIL, error=text, traceback=text)
            outcomes.append(failed)
        else:
            later = NOW + n + 0.001
            retry = Outcome(job.id, job.attempt, Transition.RETRY_LATER, error=text, run_at=later)
            outcomes.append(retry)
    assert await store.finish_jobs(outcomes, NOW + 1) == [True] * len(outcomes)

    for outcome in outcomes:
        got = await store.get_job(outcome.job_id)
        assert got is not None
        if outcome.transition is Transition.COMPLETE:
            assert (got.status, got.result) == (JobStatus.COMPLETED, outcome.result)
        elif outcome.transition is Transition.FAIL:
            assert (got.status, got.error, got.traceback) == (
                JobStatus.FAILED,
                outcome.error,
                outcome.traceback,
            )
        else:
            assert (got.status, got.error, got.run_at) == (
                JobStatus.SCHEDULED,
                outcome.error,
                outcome.run_at,
            )
