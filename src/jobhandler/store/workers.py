"""Workers: the registry of live workers, leader election among them (one holder per role, by
lease), and ending the leases of a worker whose process is known to be gone
(worker/predecessors.py)."""

from __future__ import annotations

from jobhandler.model.jobs import Job
from jobhandler.model.records import WorkerInfo
from jobhandler.store import rows as r
from jobhandler.store.resource import Resource


class Workers(Resource):
    """The worker registry and leader leases."""

    async def register_worker(self, info: WorkerInfo) -> None:
        params = {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "queues": self.dialect.json(info.queues),
            "concurrency": info.concurrency,
            "started_at": info.started_at,
            "last_seen_at": info.last_seen_at,
            "running": info.running,
            "incarnation": info.incarnation,
        }
        await self.one("register_worker", params, write=True)

    async def deregister_worker(self, worker_id: str) -> None:
        await self.one("deregister_worker", {"id": worker_id}, write=True)

    async def list_workers(self) -> list[WorkerInfo]:
        done = await self.one("list_workers", {})
        return [r.worker_from_row(row, self.dialect.loads) for row in done.rows]

    async def expire_leases_of(self, worker_id: str, now: float) -> list[Job]:
        # A moment in the past, so the rescuer's guard sees them expired.
        expired = now - 1.0
        params = {"worker": worker_id, "expired": expired}
        done = await self.one("expire_leases_of", params, write=True)
        return [self.job(row) for row in done.rows]

    # -- leader election -------------------------------------------------------------------

    async def try_lead(self, role: str, holder: str, now: float, ttl: float) -> bool:
        params = {"role": role, "holder": holder, "now": now, "until": now + ttl}
        return (await self.one("try_lead", params, write=True)).counts == [1]

    async def resign(self, role: str, holder: str) -> None:
        await self.one("resign", {"role": role, "holder": holder}, write=True)
