"""Jobs changed since a watermark, for the live feed (live.py): an index range on updated_at."""

from __future__ import annotations

from jobhandler.model.jobs import Job
from jobhandler.store.resource import Resource


class Changes(Resource):
    """The live feed's read."""

    async def changed_jobs(self, since: float, limit: int) -> list[Job]:
        done = await self.one("changed_jobs", {"since": since, "limit": limit})
        return [self.job(row) for row in done.rows]
