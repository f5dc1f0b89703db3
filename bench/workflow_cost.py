"""Workflow cost, through the store's own API and no workers: drain N plain jobs, then a
fan-in of N parents and one child, claimed and finished in batches as a worker does, then a
fan-out: one root whose end makes N jobs due at once; where the time goes when the workflow
workload (bench/run.py: a root, N after it, a child after the N) is slower than the plain drain.

    .venv/bin/python bench/workflow_cost.py --database sqlite:///tmp/x.db --n 10000

Each phase runs on the database given (tables emptied of nothing: use a fresh one). Prints one
JSON line: seconds to submit, to claim and to finish in each phase, the claim of the child, and
the root's finish that makes the N due. Ids are time-ordered, as the product makes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from jobhandler.model.jobs import NewJob, Outcome, Transition, new_job_id
from jobhandler.model.workflows import NewWorkflow, WorkflowMember
from jobhandler.settings import Settings
from jobhandler.store import open_store
from jobhandler.store.contract import Store

BATCH = 50  # jobs a worker claims and finishes at once, about


def new_job(now: float) -> NewJob:
    return NewJob(new_job_id(), "noop", "default", 0, 0, 3, None, now)


async def drain(store: Store, n: int) -> dict[str, float]:
    claim = finish = 0.0
    done = 0
    while done < n:
        t0 = time.perf_counter()
        jobs = await store.claim_jobs(["default"], "w", BATCH, time.time(), 60.0)
        t1 = time.perf_counter()
        outcomes = [
            Outcome(j.id, j.attempt, Transition.COMPLETE, wakes=j.dependents > 0) for j in jobs
        ]
        await store.finish_jobs(outcomes, time.time())
        t2 = time.perf_counter()
        claim, finish, done = claim + t1 - t0, finish + t2 - t1, done + len(jobs)
        if not jobs:
            raise SystemExit(f"nothing to claim after {done} of {n}")
    return {"claim_s": claim, "finish_s": finish}


async def plain(store: Store, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for first in range(0, n, 1000):
        await store.insert_jobs(
            [new_job(time.time()) for _ in range(min(1000, n - first))], time.time()
        )
    submit = time.perf_counter() - t0
    return {"submit_s": submit, **await drain(store, n)}


async def fan_in(store: Store, n: int) -> dict[str, float]:
    now = time.time()
    parents = [WorkflowMember(new_job(now), f"p{i}", now, (), 1) for i in range(n)]
    ids = tuple(m.job.id for m in parents)
    child = WorkflowMember(new_job(now), "child", now, ids, 0)
    t0 = time.perf_counter()
    await store.insert_workflow(NewWorkflow(str(uuid.uuid4()), "cost", now, [*parents, child]))
    submit = time.perf_counter() - t0
    result = {"submit_s": submit, **await drain(store, n)}
    t1 = time.perf_counter()
    (claimed,) = await store.claim_jobs(["default"], "w", BATCH, time.time(), 60.0)
    result["child_claim_s"] = time.perf_counter() - t1
    assert claimed.id == child.job.id
    return result


async def fan_out(store: Store, n: int) -> dict[str, float]:
    """The root's finish: its settle makes its N dependents due in the same write."""
    now = time.time()
    root = WorkflowMember(new_job(now), "root", now, (), n)
    after = [WorkflowMember(new_job(now), f"m{i}", now, (root.job.id,)) for i in range(n)]
    await store.insert_workflow(NewWorkflow(str(uuid.uuid4()), "cost", now, [root, *after]))
    (claimed,) = await store.claim_jobs(["default"], "w", 1, time.time(), 60.0)
    assert claimed.id == root.job.id
    t0 = time.perf_counter()
    outcome = Outcome(root.job.id, claimed.attempt, Transition.COMPLETE, wakes=True)
    await store.finish_jobs([outcome], time.time())
    return {"root_finish_s": time.perf_counter() - t0, **await drain(store, n)}


async def main(database: str, n: int) -> None:
    store = open_store(Settings(database_url=database))
    await store.migrate()
    try:
        ours = {"n": n, "plain": await plain(store, n), "fan_in": await fan_in(store, n)}
        ours["fan_out"] = await fan_out(store, n)
    finally:
        await store.close()
    print(json.dumps(ours))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.database, args.n))
