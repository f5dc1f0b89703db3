"""Every store operation, written once over the dialects (see dialect.py).

This module decides what the dialects share: which statements one operation runs (a unit of
work, described as data and run by the dialect in one transaction), the parameters from the
domain values, jobs from rows, the order of a claim, why a refused action was refused, and what
an integrity error means for each operation. A dialect keeps what is truly its own: the SQLite
thread and file watcher, the PostgreSQL pool, LISTEN/NOTIFY and the database clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobhandler.model.errors import DuplicateJob, InvalidTransition, JobNotFound
from jobhandler.model.jobs import Job, JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import (
    HeartbeatReply,
    IdempotencyRecord,
    JobFilter,
    JobRef,
    Page,
    WorkerInfo,
)
from jobhandler.model.tokens import DuplicateToken, Scope, TokenInfo, as_scope
from jobhandler.store import rows as r
from jobhandler.store.attempts import AttemptOps
from jobhandler.store.bulk import BulkOps
from jobhandler.store.changes import ChangeOps
from jobhandler.store.dialect import Duplicate, Step
from jobhandler.store.predecessors import PredecessorOps
from jobhandler.store.queries import Query
from jobhandler.store.queues import QueueOps
from jobhandler.store.schedules import ScheduleOps
from jobhandler.store.stats import StatsOps
from jobhandler.store.uniqueness import UniquenessOps

_REFUSALS = {
    "cancel_job": "job cannot be cancelled",
    "retry_job": "only a failed or cancelled job can be retried",
}


class StoreCore(
    AttemptOps,
    ChangeOps,
    StatsOps,
    ScheduleOps,
    QueueOps,
    BulkOps,  # before UniquenessOps, which it derives from (a retry's held keys)
    UniquenessOps,
    PredecessorOps,
):
    """The Store protocol over a dialect: a dialect class derives from this one."""

    async def ping(self) -> None:
        await self._one("ping", {})

    async def schema_version(self) -> int:
        (row,) = (await self._one("schema_version", {})).rows
        return int(row["v"])

    # -- jobs ------------------------------------------------------------------------------

    async def insert_jobs(
        self,
        jobs: Sequence[NewJob],
        now: float,
        connection: object | None = None,
        idempotency: Sequence[IdempotencyRecord] = (),
    ) -> list[Job]:
        self._accept(connection)
        # Unique keys and idempotency records ride in the same transaction (uniqueness.py).
        return await self._insert_unique(jobs, now, connection, idempotency)

    async def import_jobs(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        values = [r.job_params(j, self._json) for j in jobs]
        insert = Step(self.queries["import_jobs"], values, many=True)
        try:
            await self._run(self._counted(insert, [j.id for j in jobs]), True)
        except Duplicate as exc:
            raise DuplicateJob("a job with one of these ids exists already") from exc

    async def get_job(self, job_id: str) -> Job | None:
        found = (await self._one("get_job", {"id": job_id})).rows
        return self._job(found[0]) if found else None

    async def list_jobs(
        self,
        where: JobFilter,
        limit: int,
        cursor: str | None,
        oldest_first: bool = False,
        max_bytes: int | None = None,
    ) -> Page:
        if max_bytes is None:
            sql, params = r.list_query(where, limit, cursor, oldest_first)
            (done,) = await self._run([Step(Query("list", self._native(sql)), params)], False)
            return r.page_of(done.rows, limit, self._job)
        sizes, params = r.list_query(where, limit, cursor, oldest_first, self._sized)
        budget = r.PageBudget(limit, max_bytes)
        found = await self._page_rows(self._native(sizes), params, budget)
        return budget.page(found, self._job)

    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        done = await self._one("job_statuses", {"ids": self._array(list(job_ids))})
        return {row["id"]: JobStatus(row["status"]) for row in done.rows}

    async def delete_job(self, job_id: str) -> bool:
        return (await self._one("delete_job", {"id": job_id}, write=True)).counts == [1]

    async def prune(self, now: float, completed_age: float, failed_age: float, limit: int) -> int:
        if limit <= 0:
            return 0
        # Bounded: one short write transaction per call, however much has piled up.
        params = {
            "completed_before": now - completed_age,
            "failed_before": now - failed_age,
            "limit": limit,
        }
        return (await self._one("prune", params, write=True)).counts[0]

    # -- the worker's side -----------------------------------------------------------------

    async def claim_jobs(
        self, queues: Sequence[str], worker_id: str, limit: int, now: float, lease: float
    ) -> list[Job]:
        if limit <= 0 or not queues:
            return []
        params = {
            # A plain list, not ``_array``: SQLite gives each queue its own parameter, so its
            # planner sees them; PostgreSQL binds an array and walks jobs_due queue by queue.
            "queues": list(queues),
            "worker": worker_id,
            "now": now,
            "limit": limit,
            "lease_until": now + await self._skew() + lease,
        }
        taken = await self._claim(params)  # store/queues.py: with pauses and limits
        # RETURNING gives rows in no set order; run them in the order they were picked.
        return [self._job(row) for row in sorted(taken, key=r.claim_order)]

    async def finish_jobs(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        if not outcomes:
            return []
        skew = await self._skew()
        values = [self._finish_params(o, now, skew) for o in outcomes]
        # A dialect that writes a batch as one statement, when each job is in it once (for one
        # outcome, binding a column of arrays costs more than the statement saves).
        batch = self.queries.get("finish_jobs") if len(outcomes) > 1 else None
        if batch is not None and len({o.job_id for o in outcomes}) == len(outcomes):
            (done,) = await self._run([Step(batch, values, many=True)], True)
            matched = {row["ordinal"] for row in done.rows}
            applied = [n in matched for n in range(1, len(outcomes) + 1)]
        else:
            # One statement per outcome, in order, in one transaction: a later outcome for a job
            # sees the earlier one's effect (in one statement, a row is updated once at most).
            step = Step(self.queries["finish_job"], values, many=True, each=True)
            (done,) = await self._run([step], True)
            applied = [count == 1 for count in done.counts]
        await self._counted_finishes(len(outcomes))
        return applied

    def _finish_params(self, o: Outcome, now: float, skew: float) -> dict[str, Any]:
        """One outcome as the parameters of the guarded UPDATE: its target and the statuses it
        may leave, from the state machine; the attempt; and the rescuer's lease guard."""
        target, sources, ends = self._edges[o.transition]
        guard = o.only_if_lease_expired_by
        return {
            "target": target,
            "sources": sources,
            "result": None if o.result is None else self._json(o.result),
            "error": o.error,
            "traceback": o.traceback,
            "run_at": o.run_at,
            "finished_at": now if ends else None,
            "now": now,
            "uncount": 1 if o.transition is Transition.RELEASE else 0,
            "id": o.job_id,
            "attempt": o.attempt,
            "expired_by": None if guard is None else guard + skew,
        }

    async def heartbeat(
        self, worker_id: str, running: Sequence[JobRef], now: float, lease: float
    ) -> HeartbeatReply:
        # Only the runs the worker still has: a lease it lost track of must be left to expire.
        extend = {
            "worker": worker_id,
            "lease_until": now + await self._skew() + lease,
            "ids": self._array([ref.id for ref in running]),
            "attempts": self._array([ref.attempt for ref in running]),
        }
        seen = {"worker": worker_id, "now": now, "running": len(running)}
        steps = [Step(self.queries["touch_worker"], seen)]
        if running:
            steps.append(Step(self.queries["extend_leases"], extend))
        done = await self._run(steps, True)
        held = done[1].rows if running else []
        return r.heartbeat_reply(running, held, registered=done[0].counts == [1])

    async def cancel_requests(self, worker_id: str, running: Sequence[JobRef]) -> frozenset[str]:
        if not running:
            return frozenset()
        done = await self._one("cancel_requests", {"worker": worker_id})
        mine = {ref.id for ref in running}
        return frozenset(row["id"] for row in done.rows if row["id"] in mine)

    async def record_progress(self, progress: Sequence[tuple[JobRef, Any]], now: float) -> None:
        if not progress:
            return
        values = [
            {"progress": self._json(value), "now": now, "id": ref.id, "attempt": ref.attempt}
            for ref, value in progress
        ]
        await self._run([Step(self.queries["record_progress"], values, many=True)], True)

    async def expired_jobs(self, now: float, limit: int) -> list[Job]:
        params = {"now": now + await self._skew(), "limit": limit}
        return [self._job(row) for row in (await self._one("expired_jobs", params)).rows]

    # -- user actions ----------------------------------------------------------------------

    async def request_cancel(self, job_id: str, now: float) -> Job:
        # A waiting job ends at once, a running one is flagged for its worker (which stops the
        # run and writes the cancelled outcome, fenced).
        return await self._act("cancel_job", job_id, now)

    async def retry_job(self, job_id: str, now: float) -> Job:
        # A user retry starts afresh: earlier claims stop counting against max_attempts. It is
        # refused while another job holds the job's unique key (uniqueness.py).
        held = self._held_keys([job_id], now)
        return await self._unraced(lambda: self._act("retry_job", job_id, now, held))

    async def _act(self, name: str, job_id: str, now: float, held: Step | None = None) -> Job:
        """The guarded UPDATE, and in the same transaction the job's status, which says why
        when the UPDATE matched nothing (and ``held``: who holds the job's unique key)."""
        params = {"id": job_id, "now": now}
        steps = [Step(self.queries[name], params), Step(self.queries["job_status"], params)]
        if held is not None:
            steps.append(held)
        notify = self.queries.get(f"notify_{name.removesuffix('_job')}")
        if notify is not None:  # a dialect with a channel tells the workers
            steps.append(Step(notify, params))
        changed, status, *after = await self._run(steps, True)
        if changed.rows:
            return self._job(changed.rows[0])
        if not status.rows:
            raise JobNotFound(job_id)
        if held is not None:
            self._refuse_held(after[0])
        raise InvalidTransition(_REFUSALS[name], status.rows[0]["status"])

    # -- workers and stats -----------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        params = {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "queues": self._json(info.queues),
            "concurrency": info.concurrency,
            "started_at": info.started_at,
            "last_seen_at": info.last_seen_at,
            "running": info.running,
            "incarnation": info.incarnation,
        }
        await self._one("register_worker", params, write=True)

    async def deregister_worker(self, worker_id: str) -> None:
        await self._one("deregister_worker", {"id": worker_id}, write=True)

    async def list_workers(self) -> list[WorkerInfo]:
        done = await self._one("list_workers", {})
        return [r.worker_from_row(row, self._loads) for row in done.rows]

    # -- leader election -------------------------------------------------------------------

    async def try_lead(self, role: str, holder: str, now: float, ttl: float) -> bool:
        at = now + await self._skew()  # judged like job leases
        params = {"role": role, "holder": holder, "now": at, "until": at + ttl}
        return (await self._one("try_lead", params, write=True)).counts == [1]

    async def resign(self, role: str, holder: str) -> None:
        await self._one("resign", {"role": role, "holder": holder}, write=True)

    # -- API tokens ------------------------------------------------------------------------

    async def add_token(self, token: TokenInfo) -> None:
        params = {
            "name": token.name,
            "scope": token.scope,
            "hash": token.hash,
            "created_at": token.created_at,
        }
        try:
            await self._one("add_token", params, write=True)
        except Duplicate:
            raise DuplicateToken(f"a token named {token.name!r} exists already") from None

    async def list_tokens(self) -> list[TokenInfo]:
        return [
            TokenInfo(
                t["name"], as_scope(t["scope"]), t["hash"], t["created_at"], t["last_used_at"]
            )
            for t in (await self._one("list_tokens", {})).rows
        ]

    async def revoke_token(self, name: str) -> bool:
        return (await self._one("revoke_token", {"name": name}, write=True)).counts == [1]

    async def token_scopes(self) -> dict[str, Scope]:
        done = await self._one("token_scopes", {})
        return {t["hash"]: as_scope(t["scope"]) for t in done.rows}

    async def touch_tokens(self, hashes: Sequence[str], now: float) -> None:
        if hashes:
            values = [{"now": now, "hash": h} for h in hashes]
            await self._run([Step(self.queries["touch_token"], values, many=True)], True)
