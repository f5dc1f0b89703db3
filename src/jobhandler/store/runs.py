"""Runs: the worker's side of the store. Claims, outcomes, heartbeats, progress, cancel polls
and the rescuer's read of expired leases: the hot path, one unit of work per call whatever
the batch (claims and outcomes are batched by the worker, worker/producer.py and completer.py).

Every ``now`` is on the store's timeline: the App's clock adds the store's ``skew`` to its
host's (model/clock.py), so hosts whose clocks drift still agree on when a lease ran out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobhandler.model.jobs import TERMINAL, TRANSITIONS, Job, Outcome, Transition
from jobhandler.model.records import HeartbeatReply, JobRef
from jobhandler.store import rows as r
from jobhandler.store.dialect import Dialect, Step
from jobhandler.store.queues import Flow
from jobhandler.store.resource import Resource
from jobhandler.store.stats import Stats


class Runs(Resource):
    """Claiming jobs and writing what became of their runs."""

    def __init__(self, dialect: Dialect, flow: Flow, stats: Stats) -> None:
        super().__init__(dialect)
        self.flow = flow  # its claim honours pauses and limits
        self.stats = stats  # told of outcomes written, to fold its counters now and then
        # Each transition's part of the guarded UPDATE, from the state machine: its target, the
        # statuses it may leave (as the dialect binds a list), whether it ends the job.
        self.edges: dict[Transition, tuple[str, Any, bool]] = {
            t: (
                edge.target.value,
                dialect.array(sorted(s.value for s in edge.sources)),
                edge.target in TERMINAL,
            )
            for t, edge in TRANSITIONS.items()
        }

    async def claim_jobs(
        self, queues: Sequence[str], worker_id: str, limit: int, now: float, lease: float
    ) -> list[Job]:
        if limit <= 0 or not queues:
            return []
        params = {
            # A plain list, not ``array``: SQLite gives each queue its own parameter, so its
            # planner sees them; PostgreSQL binds an array and walks jobs_due queue by queue.
            "queues": list(queues),
            "worker": worker_id,
            "now": now,
            "limit": limit,
            "lease_until": now + lease,
        }
        taken = await self.flow.claim(params)  # store/queues.py: with pauses and limits
        # RETURNING gives rows in no set order; run them in the order they were picked.
        return [self.job(row) for row in sorted(taken, key=r.claim_order)]

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        if not outcomes:
            return []
        values = [self.finish_params(o, now) for o in outcomes]
        # A dialect that writes a batch as one statement, when each job is in it once (for one
        # outcome, binding a column of arrays costs more than the statement saves).
        batch = self.queries.get("finish_jobs") if len(outcomes) > 1 else None
        # A workflow parent's end may make its dependents due (the settle trigger): wake up.
        parents = [o.job_id for o in outcomes if o.wakes]
        wake = [Step(self.queries["wake_workers"], {"parents": self.dialect.array(parents)})]
        if batch is not None and len({o.job_id for o in outcomes}) == len(outcomes):
            (done, *_) = await self.dialect.run(
                [Step(batch, values, many=True), *(wake if parents else [])], True
            )
            matched = {row["ordinal"] for row in done.rows}
            applied = [n in matched for n in range(1, len(outcomes) + 1)]
        else:
            # One statement per outcome, in order, in one transaction: a later outcome for a job
            # sees the earlier one's effect (in one statement, a row is updated once at most).
            step = Step(self.queries["finish_job"], values, many=True, each=True)
            (done, *_) = await self.dialect.run([step, *(wake if parents else [])], True)
            applied = [count == 1 for count in done.counts]
        await self.stats.counted_finishes(len(outcomes))
        return applied

    async def finish_in(self, connection: object, outcome: Outcome, now: float) -> bool:
        self.dialect.accept(connection)
        (done, *_) = await self.dialect.run(self.finish_steps(outcome, now), True, connection)
        await self.stats.counted_finishes(1)
        return done.counts == [1]

    def finish_in_sync(self, connection: object, outcome: Outcome, now: float) -> bool:
        self.dialect.accept(connection)
        (done, *_) = self.dialect.run_sync(self.finish_steps(outcome, now), connection)
        return done.counts == [1]

    def finish_steps(self, outcome: Outcome, now: float) -> list[Step]:
        """One outcome as ``finish_jobs`` writes it alone, for a caller's transaction."""
        assert outcome.only_if_lease_expired_by is None
        steps = [Step(self.queries["finish_job"], self.finish_params(outcome, now))]
        if outcome.wakes:  # on PostgreSQL a NOTIFY, sent when the caller commits
            parents = self.dialect.array([outcome.job_id])
            steps.append(Step(self.queries["wake_workers"], {"parents": parents}))
        return steps

    def finish_params(self, o: Outcome, now: float) -> dict[str, Any]:
        """One outcome as the parameters of the guarded UPDATE: its target and the statuses it
        may leave, from the state machine; the attempt and the run's worker; and the rescuer's
        lease guard."""
        target, sources, ends = self.edges[o.transition]
        guard = o.only_if_lease_expired_by
        return {
            "target": target,
            "sources": sources,
            "result": None if o.result is None else self.dialect.json(o.result),
            "error": o.error,
            "traceback": o.traceback,
            "run_at": o.run_at,
            "finished_at": now if ends else None,
            "now": now,
            "uncount": 1 if o.transition is Transition.RELEASE else 0,
            "id": o.job_id,
            "attempt": o.attempt,
            "expired_by": guard,
            "worker": o.worker_id,
        }

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        # Only the runs the worker still has: a lease it lost track of must be left to expire.
        array = self.dialect.array
        extend = {
            "worker": worker_id,
            "lease_until": now + lease,
            "ids": array([ref.id for ref in running]),
            "attempts": array([ref.attempt for ref in running]),
        }
        seen = {"worker": worker_id, "now": now, "running": len(running)}
        steps = [Step(self.queries["touch_worker"], seen)]
        if running:
            steps.append(Step(self.queries["extend_leases"], extend))
        done = await self.dialect.run(steps, True)
        held = done[1].rows if running else []
        return r.heartbeat_reply(running, held, registered=done[0].counts == [1])

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        if not running:
            return frozenset()
        done = await self.one("cancel_requests", {"worker": worker_id})
        mine = {ref.id for ref in running}
        return frozenset(row["id"] for row in done.rows if row["id"] in mine)

    async def record_progress(
        self, worker_id: str, progress: Sequence[tuple[JobRef, Any]], now: float
    ) -> None:
        if not progress:
            return
        json, worker = self.dialect.json, worker_id
        values = [
            {"progress": json(v), "now": now, "id": r.id, "attempt": r.attempt, "worker": worker}
            for r, v in progress
        ]
        await self.dialect.run([Step(self.queries["record_progress"], values, many=True)], True)

    async def expired_jobs(self, now: float, limit: int) -> list[Job]:
        params = {"now": now, "limit": limit}
        return [self.job(row) for row in (await self.one("expired_jobs", params)).rows]
