"""Live job events for the API's server-sent event streams (``GET /events``, ``/jobs/{id}/events``).

One feed per process, however many streams are open: while anyone subscribes, a single loop
reads the jobs changed since its watermark (an index range on ``updated_at``) and hands each
changed job to every subscriber whose filter it matches. A change made in this process (a
submit, a finished run) kicks the loop at once; other processes' changes are seen at the next
poll. ``updated_at`` comes from the writers' clocks, so each read reaches back ``GRACE``
seconds behind the watermark (a writer whose commit landed late, or whose clock lags) and a
change already sent is not sent twice.

A subscriber has a bounded queue: one that cannot keep up is dropped (its stream ends and the
browser's EventSource reconnects) instead of holding memory or slowing the others.

A stream outlives the access check made when it opened, so a subscriber may bring
``still_allowed``: asked again every ``RECHECK_SECONDS`` while it waits or reads, and the
stream ends (``next()`` gives None) once it says no, e.g. when the caller's token was revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.jobs import Job

log = logging.getLogger("jobhandler.live")

POLL_INTERVAL = 0.25  # seconds between reads while anyone subscribes
GRACE = 2.0  # how far behind its watermark each read looks again
BATCH = 500  # changed jobs per read; a full read is followed by the next at once
QUEUE_SIZE = 1000  # events a subscriber may have waiting before it is dropped
RECHECK_SECONDS = 2.0  # how often a stream asks again whether its caller may still read it

ReadChanges = Callable[[float, int], Awaitable[list[Job]]]
Match = Callable[[Job], bool]
StillAllowed = Callable[[], Awaitable[bool]]


class Subscription:
    """What one stream receives: matching changed jobs, or None once it was dropped (too slow,
    or no longer allowed)."""

    def __init__(self, match: Match, size: int, still_allowed: StillAllowed | None = None) -> None:
        self.match = match
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(size)
        self.dropped = False
        self._still_allowed = still_allowed
        self._recheck_at = asyncio.get_running_loop().time() + RECHECK_SECONDS

    def offer(self, job: Job) -> None:
        if self.dropped or not self.match(job):
            return
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped = True  # too slow: end its stream rather than buffer without bound
            self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def next(self) -> Job | None:
        if self._still_allowed is None:
            return None if self.dropped and self.queue.empty() else await self.queue.get()
        loop = asyncio.get_running_loop()
        while not (self.dropped and self.queue.empty()):
            if loop.time() >= self._recheck_at:
                # Asked between events too: a busy stream must not outrun its revocation.
                if not await self._still_allowed():
                    self.dropped = True
                    return None
                self._recheck_at = loop.time() + RECHECK_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(self._recheck_at):
                    return await self.queue.get()
        return None


class JobFeed:
    def __init__(
        self,
        read_changes: ReadChanges,
        clock: Callable[[], float] = time.time,
        interval: float = POLL_INTERVAL,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self._read_changes = read_changes
        self._clock = clock
        self.interval = interval
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        match: Match,
        queue_size: int | None = None,
        *,
        still_allowed: StillAllowed | None = None,
    ) -> AsyncIterator[Subscription]:
        """Receive the changed jobs ``match`` accepts, from now on, for the block, while
        ``still_allowed`` (asked every ``RECHECK_SECONDS``) says yes."""
        sub = Subscription(match, queue_size or self.queue_size, still_allowed)
        self._subscribers.add(sub)
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._kick = asyncio.Event()
            self._task = asyncio.create_task(self._watch(), name="jobhandler-live-feed")
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def kick(self) -> None:
        """Something changed in this process: read now rather than at the next poll."""
        self._kick.set()

    async def _watch(self) -> None:
        mark = self._clock()
        sent: dict[str, float] = {}  # job id -> updated_at last sent, within the grace window
        try:
            while self._subscribers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), self.interval)
                self._kick.clear()
                try:
                    mark = await self._read(mark, sent)
                except JobHandlerError as exc:  # the store is away: streams stay open
                    log.warning("reading changed jobs failed (%s); retrying", exc)
                except Exception:
                    log.exception("reading changed jobs failed; retrying")
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _read(self, mark: float, sent: dict[str, float]) -> float:
        """Hand out every change after ``mark - GRACE`` not sent yet; the new watermark."""
        since = mark - GRACE
        while True:
            changed = await self._read_changes(since, BATCH)
            for job in changed:
                if sent.get(job.id) == job.updated_at:
                    continue
                sent[job.id] = job.updated_at
                for sub in list(self._subscribers):
                    sub.offer(job)
            if changed:
                mark = max(mark, changed[-1].updated_at)
            if len(changed) < BATCH:
                break
            since = changed[-1].updated_at  # a full batch: read on from where it ended
        for job_id in [i for i, at in sent.items() if at < mark - GRACE]:
            del sent[job_id]
        return mark
