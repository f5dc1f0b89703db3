"""Stored jobs, read and acted on: get, page through, wait for, cancel, retry, delete, in bulk,
and each one's attempts. Every frontend (HTTP, dashboard, CLI, Python) comes through here.

A caller bound to a concurrency key (tenancy.py) sees and steers only the jobs of its key:
another key's job is not found, and lists and bulk actions are narrowed to the key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

from jobhandler.model.errors import InvalidTransition, JobNotFound
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.records import Attempt, BulkAction, JobFilter, Page
from jobhandler.service.bulk import BulkDone, run_bulk
from jobhandler.service.signals import Signals
from jobhandler.service.tenancy import CALLER_KEY, scoped, visible
from jobhandler.service.waiting import JobWatch
from jobhandler.settings import Settings
from jobhandler.store import Store
from jobhandler.store.bulk import BULK_SOURCES

COUNT_CAP = 1000  # a count the store's counters cannot answer walks no more matches than this


class Jobs:
    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float], signals: Signals
    ) -> None:
        self._store, self._settings, self._clock, self._signals = store, settings, clock, signals
        # Requests waiting for jobs to finish: woken by this process's workers, or by one
        # shared read of every waited job a few times a second.
        self._watch = JobWatch(store.job_statuses)
        signals.on_finish(self._watch.wake)

    async def get(self, job_id: str) -> Job:
        job = await self._store.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return visible(job)

    async def page(
        self, where: JobFilter | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """Up to ``limit`` jobs, newest first; fewer when they would pass the settings'
        ``max_page_bytes`` (see ``Store.list_jobs``)."""
        return await self._store.list_jobs(
            scoped(where or JobFilter()), limit, cursor, max_bytes=self._settings.max_page_bytes
        )

    async def wait(self, job_id: str, timeout: float) -> Job:
        """The job once it is terminal, or as it stands after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._watch.watching(job_id) as woken:  # before the read: no wake-up is missed
            while True:
                woken.clear()
                job = await self.get(job_id)
                remaining = deadline - time.monotonic()
                if job.status.terminal or remaining <= 0:
                    return job
                with suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), remaining)

    async def cancel(self, job_id: str, wait: float = 0.0) -> Job:
        """Cancel a job; a processing one is stopped by its worker, waited for up to ``wait`` s."""
        await self._visible(job_id)
        job = await self._store.request_cancel(job_id, self._clock())
        if job.status.terminal:
            self._signals.finished([job_id])
        if job.status is JobStatus.PROCESSING:
            self._signals.cancel_requested(job_id)
            if wait > 0:
                job = await self.wait(job_id, wait)
        return job

    async def retry(self, job_id: str) -> Job:
        """Queue a finished job again. Raises InvalidTransition (UniqueKeyHeld when another
        job holds its unique key), JobNotFound."""
        await self._visible(job_id)
        job = await self._store.retry_job(job_id, self._clock())
        self._signals.submitted()
        return job

    async def delete(self, job_id: str) -> None:
        await self._visible(job_id)
        if not await self._store.delete_job(job_id):
            job = await self.get(job_id)  # raises JobNotFound when it is not there at all
            raise InvalidTransition("only a finished job can be deleted", job.status)

    async def bulk(self, action: BulkAction, where: JobFilter) -> BulkDone:
        """Cancel, retry or delete every job ``where`` matches, in short batches: how many it
        changed, and those a retry skipped because another job holds their unique key."""
        where = scoped(where)
        done = await run_bulk(self._store, self._clock, action, where, self._signals.finished)
        if action == "retry" and done.count:
            self._signals.submitted()
        return done

    async def count(self, where: JobFilter, action: BulkAction | None = None) -> tuple[int, bool]:
        """How many jobs ``where`` matches (those ``action`` would change, when given), and
        whether that is exact: a status and queue filter is answered by the store's counters
        at any size; any other is counted up to ``COUNT_CAP`` (False: more than that)."""
        where = scoped(where)
        if action is not None:
            sources = BULK_SOURCES[action]
            where = replace(where, statuses=where.statuses & sources if where.statuses else sources)
            if not where.statuses:
                return 0, True
        if where == JobFilter(statuses=where.statuses, queue=where.queue):
            wanted = {s.value for s in where.statuses}
            return sum(
                n
                for q in await self._store.queue_stats()
                if where.queue in (None, q.queue)
                for status, n in q.counts.items()
                if not wanted or status in wanted
            ), True
        found = await self._store.count_jobs(where, COUNT_CAP)
        return min(found, COUNT_CAP), found <= COUNT_CAP

    async def attempts(self, job_id: str) -> list[Attempt]:
        """Every run of the job, oldest first, the one in progress last. Raises JobNotFound."""
        await self._visible(job_id)
        return await self._store.job_attempts(job_id)

    async def _visible(self, job_id: str) -> None:
        """JobNotFound unless the caller may act on the job: a caller bound to a key, on a job
        of its key (a job's key never changes, so the check holds for the action after it)."""
        if CALLER_KEY.get() is not None:
            await self.get(job_id)
