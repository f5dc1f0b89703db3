"""Workflows in the store contract: the fan-in count, failure and its cascade, a retry that
resumes, spawned children; on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

from jobhandler.model.jobs import Job, JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import JobFilter, JobRef
from jobhandler.model.workflows import NewWorkflow, WorkflowMember, WorkflowStatus
from jobhandler.store import Store

NOW = 1_900_000_000.0
LEASE = 30.0


def member(
    key: str, after: tuple[str, ...] = (), dependents: int = 0, run: bool = False
) -> WorkflowMember:
    job = NewJob(str(uuid.uuid4()), "t", "default", key, 0, 1, None, NOW)
    return WorkflowMember(job, key, NOW, after, dependents, "run" if run else None)


def graph(edges: dict[str, list[str]], run: frozenset[str] = frozenset()) -> NewWorkflow:
    """Members from {key: parents' keys}, in the order given (parents first)."""
    ids = {key: str(uuid.uuid4()) for key in edges}
    children = {key: sum(key in parents for parents in edges.values()) for key in edges}
    members = []
    for key, parents in edges.items():
        m = member(key, tuple(ids[p] for p in parents), children[key], key in run)
        job = NewJob(ids[key], "t", "default", key, 0, 1, None, NOW)
        members.append(WorkflowMember(job, key, NOW, m.after, m.dependents, m.on_parent_failure))
    return NewWorkflow(str(uuid.uuid4()), "wf", NOW, members)


async def statuses(store: Store, wf: NewWorkflow) -> dict[str, str]:
    view = await store.get_workflow(wf.id)
    assert view is not None
    return {job.key: job.status.value for job in view.jobs}


async def run_one(store: Store, key: str, ok: bool = True, now: float = NOW) -> Job:
    (job,) = [j for j in await store.claim_jobs(["default"], "w", 100, now, LEASE)]
    assert job.workflow_key == key, (job.workflow_key, key)
    transition = Transition.COMPLETE if ok else Transition.FAIL
    outcome = Outcome(job.id, job.attempt, transition, result=f"r-{key}", error=None if ok else "x")
    assert await store.finish_jobs([outcome], now) == [True]
    return job


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


async def test_the_diamond_runs_in_order(store: Store) -> None:
    wf = graph(DIAMOND)
    jobs = await store.insert_workflow(wf)
    assert [j.status for j in jobs] == [JobStatus.QUEUED] + [JobStatus.WAITING] * 3
    await run_one(store, "a")
    assert await statuses(store, wf) == {
        "a": "completed",
        "b": "queued",
        "c": "queued",
        "d": "waiting",
    }
    claimed = await store.claim_jobs(["default"], "w", 10, NOW, LEASE)
    assert sorted(j.workflow_key or "" for j in claimed) == ["b", "c"]
    done = [Outcome(j.id, j.attempt, Transition.COMPLETE, result=j.workflow_key) for j in claimed]
    assert await store.finish_jobs(done, NOW) == [True, True]
    d = await run_one(store, "d")
    parents = await store.parent_outcomes(d.id)
    assert {p.key: p.result for p in parents} == {"b": "b", "c": "c"}
    view = await store.get_workflow(wf.id)
    assert view is not None and view.status is WorkflowStatus.COMPLETED
    assert view.jobs[3].after == ("b", "c")
    counts = {q.queue: q.counts for q in await store.queue_stats(NOW)}
    assert counts["default"].get("completed") == 4 and not counts["default"].get("waiting")


async def test_a_failure_cancels_only_what_runs_after_it(store: Store) -> None:
    wf = graph({"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": ["d"], "f": ["c"]})
    await store.insert_workflow(wf)
    await run_one(store, "a")
    claimed = await store.claim_jobs(["default"], "w", 10, NOW, LEASE)
    by_key = {j.workflow_key: j for j in claimed}
    b, c = by_key["b"], by_key["c"]
    await store.finish_jobs(
        [
            Outcome(b.id, b.attempt, Transition.FAIL, error="boom"),
            Outcome(c.id, c.attempt, Transition.COMPLETE),
        ],
        NOW,
    )
    seen = await statuses(store, wf)
    assert seen == {
        "a": "completed",
        "b": "failed",
        "c": "completed",
        "d": "cancelled",
        "e": "cancelled",
        "f": "queued",
    }
    d = await store.get_job(wf.jobs[3].job.id)
    assert d is not None and d.error is not None and "parent b" in d.error
    e = await store.get_job(wf.jobs[4].job.id)
    assert e is not None and e.error is not None and "parent d" in e.error
    await run_one(store, "f")
    view = await store.get_workflow(wf.id)
    assert view is not None and view.status is WorkflowStatus.FAILED


async def test_a_retry_of_the_failed_job_resumes_the_workflow(store: Store) -> None:
    wf = graph({"a": [], "b": ["a"], "c": ["b"]})
    await store.insert_workflow(wf)
    await run_one(store, "a", ok=False)
    assert await statuses(store, wf) == {"a": "failed", "b": "cancelled", "c": "cancelled"}
    await store.retry_job(wf.jobs[0].job.id, NOW + 1)
    assert await statuses(store, wf) == {"a": "queued", "b": "waiting", "c": "waiting"}
    await run_one(store, "a", now=NOW + 2)
    await run_one(store, "b", now=NOW + 2)
    await run_one(store, "c", now=NOW + 2)
    view = await store.get_workflow(wf.id)
    assert view is not None and view.status is WorkflowStatus.COMPLETED


async def test_run_on_parent_failure_runs_anyway(store: Store) -> None:
    wf = graph({"a": [], "cleanup": ["a"], "next": ["a"]}, run=frozenset({"cleanup"}))
    await store.insert_workflow(wf)
    await run_one(store, "a", ok=False)
    assert (await statuses(store, wf))["cleanup"] == "queued"
    assert (await statuses(store, wf))["next"] == "cancelled"
    cleanup = await run_one(store, "cleanup")
    (parent,) = await store.parent_outcomes(cleanup.id)
    assert parent.status is JobStatus.FAILED and parent.error == "x"


async def test_cancelling_a_waiting_parent_cancels_its_dependents(store: Store) -> None:
    wf = graph({"a": [], "b": ["a"], "c": ["b"]})
    await store.insert_workflow(wf)
    await store.request_cancel(wf.jobs[1].job.id, NOW)
    assert await statuses(store, wf) == {"a": "queued", "b": "cancelled", "c": "cancelled"}
    cancelled = await store.bulk_step("cancel", JobFilter(workflow_id=wf.id), 0, 100, NOW)
    assert cancelled.changed == 1
    assert (await statuses(store, wf))["a"] == "cancelled"


async def test_a_spawned_child_holds_back_the_jobs_after_its_parent(store: Store) -> None:
    wf = graph({"split": [], "merge": ["split"]})
    await store.insert_workflow(wf)
    (split,) = await store.claim_jobs(["default"], "w", 1, NOW, LEASE)
    piece = member("piece-1")
    child = await store.spawn(JobRef(split.id, split.attempt), piece, NOW)
    assert child is not None and child.status is JobStatus.QUEUED
    assert await store.spawn(JobRef(split.id, split.attempt), piece, NOW) is not None  # again
    stale = await store.spawn(JobRef(split.id, split.attempt + 1), member("x"), NOW)
    assert stale is None
    await store.finish_jobs([Outcome(split.id, split.attempt, Transition.COMPLETE)], NOW)
    merge = await store.get_job(wf.jobs[1].job.id)
    assert merge is not None and merge.status is JobStatus.WAITING and merge.waiting_on == 1
    assert merge.after == [wf.jobs[0].job.id, child.id]
    await run_one(store, "piece-1")
    await run_one(store, "merge")


async def test_parents_finishing_together_release_the_child_once(store: Store) -> None:
    edges: dict[str, list[str]] = {f"p{i}": [] for i in range(40)}
    edges["child"] = list(edges)
    wf = graph(edges)
    await store.insert_workflow(wf)
    claimed = await store.claim_jobs(["default"], "w", 40, NOW, LEASE)
    assert len(claimed) == 40

    async def finish(job: Job) -> None:
        await store.finish_jobs([Outcome(job.id, job.attempt, Transition.COMPLETE)], NOW)

    await asyncio.gather(*(finish(j) for j in claimed))
    child = await store.get_job(wf.jobs[-1].job.id)
    assert child is not None and child.status is JobStatus.QUEUED and child.waiting_on == 0


async def test_a_retried_job_still_waits_for_its_unsettled_parents(store: Store) -> None:
    wf = graph({"a": [], "b": ["a"]})
    await store.insert_workflow(wf)
    b_id = wf.jobs[1].job.id
    await store.request_cancel(b_id, NOW)
    retried = await store.retry_job(b_id, NOW + 1)
    assert retried.status is JobStatus.WAITING
    (a,) = await store.claim_jobs(["default"], "w", 10, NOW + 1, LEASE)
    assert a.workflow_key == "a"
    await store.finish_jobs([Outcome(a.id, a.attempt, Transition.COMPLETE)], NOW + 1)
    await run_one(store, "b", now=NOW + 2)


async def test_a_workflow_is_pruned_with_the_last_of_its_jobs(store: Store) -> None:
    wf = graph({"a": [], "b": ["a"]})
    await store.insert_workflow(wf)
    await run_one(store, "a")
    assert await store.prune_workflows(NOW + 10) == 0  # b is still there
    await run_one(store, "b")
    assert await store.prune(NOW + 100, 1.0, 1.0, 100) == 2
    assert await store.prune_workflows(NOW + 10) == 1
    assert await store.get_workflow(wf.id) is None
