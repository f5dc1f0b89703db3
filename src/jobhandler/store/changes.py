"""Jobs changed since a watermark, for the live feed (live.py): an index range on updated_at."""

from __future__ import annotations

from jobhandler.model.jobs import Job
from jobhandler.store.dialect import Dialect


class ChangeOps(Dialect):
    async def changed_jobs(self, since: float, limit: int) -> list[Job]:
        done = await self._one("changed_jobs", {"since": since, "limit": limit})
        return [self._job(row) for row in done.rows]
