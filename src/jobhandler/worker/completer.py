"""The completer: writes outcomes and progress in batches, each write fenced by attempt.

Group commit, with no timer: a write goes out as soon as there is something to write and the
previous write has returned, carrying everything that arrived meanwhile. Idle, an outcome is
written at once; under load, batches grow by themselves to what the store can take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from jobhandler.model.errors import StoreUnavailable
from jobhandler.model.jobs import Outcome
from jobhandler.model.records import JobRef
from jobhandler.observe.events import Events
from jobhandler.store.contract import Store
from jobhandler.worker.executor import Running

log = logging.getLogger("jobhandler.worker")


class Completer:
    def __init__(
        self,
        store: Store,
        worker_id: str,
        clock: Callable[[], float],
        on_written: Callable[[Iterable[str]], None],
        retry_pause: float,
        events: Events | None = None,
    ) -> None:
        self.store = store
        self.worker_id = worker_id  # fences the progress it writes, as Outcome.worker_id does
        self.clock = clock
        self.on_written = on_written  # wakes whoever waits on these jobs in this process
        self.retry_pause = retry_pause
        self.events = events or Events()
        # Each outcome with the run it ends (None for one not from a run of this worker).
        self._outcomes: list[tuple[Outcome, Running | None]] = []
        self._written_by_task: list[tuple[Outcome, Running | None]] = []  # ctx.transaction()
        self._progress: dict[str, tuple[JobRef, Any]] = {}
        self._wanted = asyncio.Event()
        self._writing = 0  # outcomes in the write in flight

    @property
    def unwritten(self) -> int:
        """Outcomes of ended runs not written yet: waiting, or in the write in flight."""
        return len(self._outcomes) + self._writing

    def add(self, outcome: Outcome, run: Running | None = None, written: bool = False) -> None:
        """Write ``outcome``; once written, tell the events how ``run`` ended. ``written``:
        the task's own transaction wrote it already (worker/transactions.py), tell only."""
        (self._written_by_task if written else self._outcomes).append((outcome, run))
        self._wanted.set()

    def add_progress(self, ref: JobRef, value: Any) -> None:
        """Only the newest value of a run is written: older ones are already out of date."""
        self._progress[ref.id] = (ref, value)
        self._wanted.set()

    async def run(self) -> None:
        """Write until cancelled; then ``flush()`` once more for what is left."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.flush()
            except StoreUnavailable as exc:
                log.warning("writing outcomes failed (%s); retrying", exc)
                self._wanted.set()
                await asyncio.sleep(self.retry_pause)

    async def flush(self) -> None:
        now = self.clock()
        outcomes, self._outcomes = self._outcomes, []
        progress, self._progress = list(self._progress.values()), {}
        self._writing = len(outcomes)
        try:
            if progress:
                await self.store.record_progress(self.worker_id, progress, now)
            applied = await self.store.finish_jobs([o for o, _ in outcomes], now)
        except BaseException:
            self._outcomes[:0] = outcomes  # keep them for the next try
            raise
        finally:
            self._writing = 0
        if outcomes:
            self._written(outcomes, applied, now)
        if told := self._written_by_task:
            self._written_by_task = []
            self._written(told, [True] * len(told), now)

    def _written(
        self, outcomes: list[tuple[Outcome, Running | None]], applied: list[bool], now: float
    ) -> None:
        for (outcome, run), ok in zip(outcomes, applied, strict=True):
            if not ok:
                log.warning(
                    "lease lost on job %s (attempt %d): outcome %s not written",
                    outcome.job_id,
                    outcome.attempt,
                    outcome.transition,
                )
            elif run is not None:
                self.events.run_ended(run.job, outcome, now, run.duration, run.timed_out)
        self.on_written(o.job_id for o, _ in outcomes)
