"""Requests waiting for jobs to finish (``GET /jobs/{id}?wait=N``), watched together.

Each waiter registers its job id and sleeps. Two things wake it: the in-process signal (a worker
in this process wrote outcomes, or this process cancelled a waiting job), at once; and one shared
watch loop, which runs only while someone waits and reads the status of every waited job in a
single store query a few times a second (a worker in another process gives no signal). So a
thousand waiters cost the store what one costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.jobs import JobStatus

log = logging.getLogger("jobhandler.waiting")

# How often the shared loop reads the waited jobs: the longest a waiter on a job finished by
# another process sleeps past its end.
WATCH_INTERVAL = 0.25

ReadStatuses = Callable[[Sequence[str]], Awaitable[dict[str, JobStatus]]]


class JobWatch:
    """Waiters on job ids, woken by ``wake`` or by the shared loop reading ``read_statuses``."""

    def __init__(self, read_statuses: ReadStatuses, interval: float = WATCH_INTERVAL) -> None:
        self._read_statuses = read_statuses
        self.interval = interval
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watching(self, job_id: str) -> Iterator[asyncio.Event]:
        """Register a waiter on ``job_id`` for the block; the event is set when the job may
        have finished (or gone). Register before reading the job, so no wake-up is missed, and
        clear the event before each read: a wake-up is a hint, the read is the verdict."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        task = self._loop_task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._loop_task = asyncio.create_task(self._watch(), name="jobhandler-job-watch")
        try:
            yield event
        finally:
            events = self._waiting.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[job_id]

    def wake(self, job_ids: Iterable[str] | None = None) -> None:
        """Wake the waiters of these jobs, or every waiter when ``job_ids`` is None."""
        ids = list(self._waiting) if job_ids is None else job_ids
        for job_id in ids:
            for event in self._waiting.get(job_id, ()):
                event.set()

    async def _watch(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                if not self._waiting:
                    return  # the next waiter starts a new loop
                ids = list(self._waiting)
                try:
                    statuses = await self._read_statuses(ids)
                except JobHandlerError as exc:  # the store is away: waiters keep waiting
                    log.warning("reading waited jobs failed (%s); retrying", exc)
                    continue
                except Exception:  # a bug must not leave every waiter to its timeout
                    log.exception("reading waited jobs failed; retrying")
                    continue
                # A job that is finished, or no longer there, ends its waits.
                self.wake(i for i in ids if i not in statuses or statuses[i].terminal)
        finally:
            if self._loop_task is asyncio.current_task():
                self._loop_task = None
