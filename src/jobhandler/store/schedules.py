"""Store operations of periodic schedules (the ``schedules`` table, migration 007).

One job per due time is the store's rule, not the scheduler's: ``fire_schedule`` moves the
next due time by compare-and-set and inserts the job in the same transaction, the insert
conditioned on the update having happened (the row carries the new job's id). So two
schedulers that read the same row (two leaders overlapping for a moment) make one job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobhandler.model.jobs import Job, NewJob
from jobhandler.model.records import ScheduleView
from jobhandler.model.schedules import ScheduleNotFound
from jobhandler.store import rows as r
from jobhandler.store.dialect import Step
from jobhandler.store.resource import Resource


class Schedules(Resource):
    """The schedule operations of the Store protocol."""

    async def sync_schedules(self, schedules: Sequence[ScheduleView], now: float) -> None:
        if not schedules:
            return
        values = [
            {
                "name": s.name,
                "task": s.task,
                "cron": s.cron,
                "every": s.every,
                "timezone": s.timezone,
                "payload": self.dialect.json(s.payload),
                "missed": s.missed,
                "next_due": s.next_run_at,
                "now": now,
            }
            for s in schedules
        ]
        await self.dialect.run([Step(self.queries["sync_schedule"], values, many=True)], True)

    async def list_schedules(self) -> list[ScheduleView]:
        found = [self._schedule(row) for row in (await self.one("list_schedules", {})).rows]
        return sorted(found, key=lambda s: s.name)  # by code point on both (not by collation)

    async def fire_schedule(
        self, name: str, expected: float, job: NewJob, next_run_at: float, now: float
    ) -> Job | None:
        created = r.created_job(job, now)
        params: dict[str, Any] = {
            **r.new_job_params(created, self.dialect.json),
            "name": name,
            "expected": expected,
            "next_due": next_run_at,
            "now": now,
        }
        insert = Step(self.queries["insert_fired_job"], params)
        # Found by id: a fire that lost its compare-and-set inserted nothing and counts nothing.
        steps = [Step(self.queries["fire_schedule"], params), *self.counted(insert, [created.id])]
        notify = self.queries.get("notify_fired")
        if notify is not None:  # a dialect with a channel tells the workers
            steps.append(Step(notify, params))
        fired, *_ = await self.dialect.run(steps, True)
        return created if fired.counts == [1] else None

    async def advance_schedule(
        self, name: str, expected: float, next_run_at: float, now: float
    ) -> bool:
        params = {"name": name, "expected": expected, "next_due": next_run_at, "now": now}
        return (await self.one("advance_schedule", params, write=True)).counts == [1]

    async def pause_schedule(self, name: str, paused: bool, now: float) -> ScheduleView:
        params = {"name": name, "paused": paused, "now": now}
        found = (await self.one("pause_schedule", params, write=True)).rows
        if not found:
            raise ScheduleNotFound(name)
        return self._schedule(found[0])

    def _schedule(self, row: Any) -> ScheduleView:
        return ScheduleView(
            name=row["name"],
            task=row["task"],
            cron=row["cron"],
            every=row["every"],
            timezone=row["timezone"],
            payload=self.dialect.loads(row["payload"]),
            missed=row["missed"],
            paused=bool(row["paused"]),
            next_run_at=row["next_due"],
            last_run_at=row["last_due"],
            last_job_id=row["last_job_id"],
        )
