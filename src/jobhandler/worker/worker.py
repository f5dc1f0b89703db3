"""The worker: claims jobs in batches, runs them, and writes their outcomes in batches.

Every write it makes about a job is fenced by the attempt it claimed, so a worker whose lease
was taken over changes nothing: it stops the run and logs "lease lost".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from jobhandler.app import App
from jobhandler.context import JobContext
from jobhandler.errors import (
    InvalidResult,
    JobHandlerError,
    PermanentFailure,
    RetryLater,
    StoreUnavailable,
)
from jobhandler.jobs import Job, Outcome, Transition
from jobhandler.redact import clean
from jobhandler.retry import RetryPolicy
from jobhandler.settings import Settings
from jobhandler.store.base import JobRef, WorkerInfo
from jobhandler.validation import JsonLimits, json_errors
from jobhandler.worker.maintenance import Pruner, Rescuer
from jobhandler.worker.runners import ChildFailed, JobTimeout, Runner

log = logging.getLogger("jobhandler.worker")


class StopReason(Enum):
    CANCEL = "cancel"  # a user asked: the job ends cancelled
    LOST = "lost"  # the lease went to someone else: write nothing
    SHUTDOWN = "shutdown"  # graceful stop ran out of time: hand the job back


@dataclass
class Running:
    job: Job
    ctx: JobContext
    stop_reason: StopReason | None = None
    run: asyncio.Task[Outcome | None] = field(init=False)

    @property
    def ref(self) -> JobRef:
        return JobRef(self.job.id, self.job.attempt)


class Worker:
    """One asyncio worker. ``await worker.run()`` until ``worker.stop()`` is called."""

    def __init__(self, app: App, settings: Settings, *, queues: list[str] | None = None) -> None:
        self.app = app
        self.settings = settings
        self.queues = queues or list(settings.queues) or app.tasks.queues() or ["default"]
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.runner = Runner(
            settings.app, settings.thread_cancel_grace, settings.process_concurrency
        )
        self._running: dict[str, Running] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._progress: dict[str, tuple[JobRef, Any]] = {}
        self._flush_wanted = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = 0.0

    @property
    def running_jobs(self) -> list[Job]:
        return [r.job for r in self._running.values()]

    def stop(self) -> None:
        """Stop claiming; running jobs get ``shutdown_timeout`` seconds before being handed back."""
        self._stopping.set()
        self._wake.set()

    # -- the main loop ---------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        store = self.app.store
        self._started_at = self.app.clock()
        await self._register()

        def on_cancel(job_id: str) -> None:
            self._stop_run(job_id, StopReason.CANCEL)

        unsubscribe = [self.app.on_submit(self._wake.set), self.app.on_cancel(on_cancel)]
        # Wake-ups from other processes (NOTIFY, or the SQLite file watcher); polling stays
        # the truth, so a missed one only costs latency.
        stop_listening = await store.listen(self._wake.set, on_cancel)
        settings = self.settings
        services = [
            asyncio.create_task(self._every(settings.heartbeat_interval, self._heartbeat)),
            asyncio.create_task(self._every(settings.cancel_check_interval, self._check_cancels)),
            asyncio.create_task(
                self._every(settings.rescue_interval, Rescuer(self.app, settings).run_once)
            ),
            asyncio.create_task(
                self._every(settings.prune_interval, Pruner(self.app, settings).run_once)
            ),
        ]
        flusher = asyncio.create_task(self._flush_loop())
        log.info("worker %s serving queues %s", self.id, ",".join(self.queues))
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            for cancel in unsubscribe:
                cancel()
            await stop_listening()
            for service in services:
                service.cancel()
            await asyncio.gather(*services, return_exceptions=True)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._flush()
            try:
                await store.deregister_worker(self.id)
            except JobHandlerError as exc:
                log.warning("could not deregister worker %s: %s", self.id, exc)
            log.info("worker %s stopped", self.id)

    async def _claim_loop(self) -> None:
        store, settings = self.app.store, self.settings
        failures = 0
        while not self._stopping.is_set():
            free = settings.concurrency - len(self._running)
            claimed = 0
            if free > 0:
                self._wake.clear()  # before the read, so a submit during it is not missed
                try:
                    jobs = await store.claim_jobs(
                        self.queues, self.id, free, self.app.clock(), settings.lease
                    )
                    failures = 0
                except StoreUnavailable as exc:
                    failures += 1
                    log.warning("claim failed (%s); retrying", exc)
                    await self._pause(min(0.1 * 2**failures, settings.poll_interval))
                    continue
                for job in jobs:
                    self._start(job)
                claimed = len(jobs)
            if claimed == free and free > 0:
                continue  # a full batch: there may be more waiting
            await self._pause(settings.poll_interval)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _drain(self) -> None:
        """Graceful stop: let runs finish in time, then hand the rest back to the queue."""
        if not self._running:
            return
        runs = [r.run for r in self._running.values()]
        log.info("waiting up to %gs for %d running jobs", self.settings.shutdown_timeout, len(runs))
        await asyncio.wait(runs, timeout=self.settings.shutdown_timeout)
        for job_id in list(self._running):
            self._stop_run(job_id, StopReason.SHUTDOWN)
        if left := [r.run for r in self._running.values()]:
            await asyncio.wait(left)

    # -- one run ---------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        if job.id in self._running:
            # We still run an older attempt of this job: this process stalled past its lease,
            # the job was rescued and came back to us. That run lost; stop it before this one.
            self._stop_run(job.id, StopReason.LOST)
        entry = Running(job, JobContext(job.id, job.task, job.attempt, self._record_progress))
        entry.run = asyncio.create_task(self._outcome_of(entry), name=f"job-{job.id}")
        entry.run.add_done_callback(partial(self._settle, entry))
        self._running[job.id] = entry

    def _settle(self, entry: Running, run: asyncio.Task[Outcome | None]) -> None:
        """A run ended (even one cancelled before it began): forget it and queue its outcome."""
        job = entry.job
        if self._running.get(job.id) is entry:  # not a newer attempt of the same job
            del self._running[job.id]
        self._wake.set()
        if entry.stop_reason is StopReason.LOST:
            log.warning("lease lost on job %s (attempt %d): result dropped", job.id, job.attempt)
            return
        if run.cancelled():
            outcome = self._stopped_outcome(entry)
        elif (error := run.exception()) is not None:
            log.error("running job %s failed in the worker", job.id, exc_info=error)
            return
        else:
            outcome = run.result()
        if outcome is not None:
            self._outcomes.append(outcome)
            self._flush_wanted.set()

    @staticmethod
    def _stopped_outcome(entry: Running) -> Outcome | None:
        """What a run stopped on purpose ends as; None when it was lost, or not stopped by us."""
        job = entry.job
        if entry.stop_reason is StopReason.CANCEL:
            return Outcome(job.id, job.attempt, Transition.ABORT, error="cancelled")
        if entry.stop_reason is StopReason.SHUTDOWN:
            return Outcome(job.id, job.attempt, Transition.RELEASE)
        return None

    async def _outcome_of(self, entry: Running) -> Outcome | None:
        job, ctx = entry.job, entry.ctx
        fail = _Failure(job, self.app.clock)
        try:
            task = self.app.tasks.get(job.task)
            payload = task.load_payload(job.payload)
        except JobHandlerError as exc:  # nothing to run: never import by name from the store
            return fail.permanently(str(exc), "")
        try:
            result = await self.runner.run(task, payload, ctx, job.timeout)
        except asyncio.CancelledError:
            if entry.stop_reason in (StopReason.CANCEL, StopReason.SHUTDOWN):
                return self._stopped_outcome(entry)
            raise  # lost, or the loop itself is going away: write nothing
        except RetryLater as exc:
            return fail.retry_at(str(exc), "", self.app.clock() + exc.delay)
        except PermanentFailure as exc:
            return fail.permanently(str(exc) or "failed", traceback.format_exc())
        except JobTimeout as exc:
            return fail.by_policy(str(exc), "", task.options.retry)
        except ChildFailed as exc:
            return fail.by_policy(str(exc), exc.traceback, task.options.retry)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return fail.by_policy(message, traceback.format_exc(), task.options.retry)
        return Outcome(job.id, job.attempt, Transition.COMPLETE, result=result)

    def _stop_run(self, job_id: str, reason: StopReason, attempt: int | None = None) -> None:
        entry = self._running.get(job_id)
        if entry is None or entry.stop_reason is not None:
            return
        if attempt is not None and entry.job.attempt != attempt:
            return  # the news is about an older attempt, not the run we hold now
        entry.stop_reason = reason
        entry.ctx.cancel()
        entry.run.cancel()

    def _record_progress(self, job_id: str, attempt: int, value: Any) -> None:
        # Checked here, in the task's own call: a value no store can write fails the run with
        # a clear error (InvalidResult), instead of failing the batched write of every job.
        limits = JsonLimits(self.settings.max_json_depth, self.settings.max_payload_bytes)
        if problems := json_errors(value, ["progress"], limits):
            entry = self._running.get(job_id)
            raise InvalidResult(entry.job.task if entry else job_id, problems[0])
        loop = self._loop
        if loop is None:
            return

        def record() -> None:
            self._progress[job_id] = (JobRef(job_id, attempt), value)
            self._flush_wanted.set()

        loop.call_soon_threadsafe(record)

    # -- batched writes --------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            # Let a few more outcomes arrive, so one write carries many.
            await asyncio.sleep(self.settings.completion_flush_interval)
            self._flush_wanted.clear()
            try:
                await self._flush()
            except StoreUnavailable as exc:
                log.warning("writing outcomes failed (%s); retrying", exc)
                self._flush_wanted.set()
                await asyncio.sleep(min(1.0, self.settings.poll_interval))

    async def _flush(self) -> None:
        store, now = self.app.store, self.app.clock()
        outcomes, self._outcomes = self._outcomes, []
        progress, self._progress = list(self._progress.values()), {}
        try:
            if progress:
                await store.record_progress(progress, now)
            if outcomes:
                applied = await store.finish_jobs(outcomes, now)
                for outcome, ok in zip(outcomes, applied, strict=True):
                    if not ok:
                        log.warning(
                            "lease lost on job %s (attempt %d): outcome %s not written",
                            outcome.job_id,
                            outcome.attempt,
                            outcome.transition,
                        )
                self.app.notify_finished(o.job_id for o in outcomes)
        except BaseException:
            self._outcomes[:0] = outcomes  # keep them for the next try
            raise

    # -- leases and cancels ----------------------------------------------------------------

    async def _every(
        self, interval: float, action: Callable[[], Coroutine[Any, Any, object]]
    ) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await action()
            except JobHandlerError as exc:
                log.warning("%s failed: %s", getattr(action, "__name__", "service"), exc)

    async def _register(self) -> None:
        now = self.app.clock()
        info = WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.settings.concurrency,
            started_at=self._started_at,
            last_seen_at=now,
            running=len(self._running),
        )
        await self.app.store.register_worker(info)

    async def _heartbeat(self) -> None:
        refs = [r.ref for r in self._running.values()]
        reply = await self.app.store.heartbeat(self.id, refs, self.app.clock(), self.settings.lease)
        if not reply.registered:  # silent so long that the registry forgot us: back in it
            log.warning("worker %s was forgotten by the registry; registering again", self.id)
            await self._register()
        for ref in refs:
            if ref.id in reply.lost:
                self._stop_run(ref.id, StopReason.LOST, ref.attempt)
            elif ref.id in reply.cancel:
                self._stop_run(ref.id, StopReason.CANCEL, ref.attempt)

    async def _check_cancels(self) -> None:
        if not self._running:
            return
        refs = [r.ref for r in self._running.values()]
        for job_id in await self.app.store.cancel_requests(self.id, refs):
            self._stop_run(job_id, StopReason.CANCEL)


class _Failure:
    """The outcome of a failed run: retried by the policy, or failed for good.

    Every error and traceback passes through ``clean`` here: task text may quote the store URL
    (shown over the API, so its password goes), or hold NUL or lone surrogates (which a store
    cannot write, and which would fail the whole completion batch).
    """

    def __init__(self, job: Job, clock: Callable[[], float]) -> None:
        self.job = job
        self.clock = clock

    def permanently(self, error: str, trace: str) -> Outcome:
        return Outcome(
            self.job.id,
            self.job.attempt,
            Transition.FAIL,
            error=clean(error),
            traceback=clean(trace),
        )

    def retry_at(self, error: str, trace: str, when: float) -> Outcome:
        if not self.job.attempts_left:
            return self.permanently(error, trace)
        return Outcome(
            self.job.id,
            self.job.attempt,
            Transition.RETRY_LATER,
            error=clean(error),
            traceback=clean(trace),
            run_at=when,
        )

    def by_policy(self, error: str, trace: str, policy: RetryPolicy) -> Outcome:
        when = policy.decide(self.job, self.clock())
        if when is None:
            return self.permanently(error, trace)
        return self.retry_at(error, trace, when)
