"""The producer: claims as many due jobs as there are free slots, in one round trip.

It sleeps until the notifier or a finished run wakes it, or ``poll_interval`` passes: polling
is the truth, wake-ups only make it sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from jobhandler.model.errors import DiskFull, StoreUnavailable
from jobhandler.model.jobs import Job
from jobhandler.store.contract import Store

log = logging.getLogger("jobhandler.worker")


class Producer:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        *,
        queues: Sequence[str],
        worker_id: str,
        lease: float,
        poll_interval: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.queues = list(queues)
        self.worker_id = worker_id
        self.lease = lease
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Look again now: jobs may be due, or a slot came free."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self, free_slots: Callable[[], int], start: Callable[[Job], None]) -> None:
        """Claim into free slots and ``start`` each job, until ``stop()``."""
        failures = 0
        while not self._stopping:
            free = free_slots()
            claimed = 0
            if free > 0:
                self._wake.clear()  # before the read, so a submit during it is not missed
                try:
                    jobs = await self.store.claim_jobs(
                        self.queues, self.worker_id, free, self.clock(), self.lease
                    )
                    failures = 0
                except StoreUnavailable as exc:
                    failures += 1
                    # A full disk is logged by the store as it starts and ends, not each try.
                    if failures == 1 or not isinstance(exc, DiskFull):
                        log.warning("claim failed (%s); retrying", exc)
                    # Capped: past ~1,000 tries (a disk full for 17 minutes) 2**failures
                    # was too large a float, and the claim loop died of OverflowError.
                    await self._pause(min(0.1 * 2 ** min(failures, 20), self.poll_interval))
                    continue
                # Even when stopped during the claim: the jobs are ours now, and the graceful
                # stop finishes or hands them back like any other run.
                for job in jobs:
                    start(job)
                claimed = len(jobs)
            if claimed == free and free > 0:
                continue  # a full batch: there may be more waiting
            await self._pause(self.poll_interval)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
