"""Ending the leases of a worker whose process is known to be gone (worker/predecessors.py)."""

from __future__ import annotations

from jobhandler.model.jobs import Job
from jobhandler.store.dialect import Dialect


class PredecessorOps(Dialect):
    async def expire_leases_of(self, worker_id: str, now: float) -> list[Job]:
        # A moment in the past on the store's clock, so the rescuer's guard sees them expired.
        expired = now + await self._skew() - 1.0
        params = {"worker": worker_id, "expired": expired}
        done = await self._one("expire_leases_of", params, write=True)
        return [self._job(row) for row in done.rows]
