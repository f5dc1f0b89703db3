"""The worker: wires a producer, an executor and a completer, with heartbeats and cancels.

- the producer claims due jobs into free slots (worker/producer.py);
- the executor runs each one and says how it ended (worker/executor.py);
- the completer writes those outcomes in batches (worker/completer.py);
- maintenance (rescue, prune) runs here only while this worker is the elected leader.

Every write about a job is fenced by the attempt it claimed, so a worker whose lease was taken
over changes nothing: it stops the run and logs "lease lost".
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any

from jobhandler.app import App
from jobhandler.model.context import JobContext
from jobhandler.model.errors import InvalidResult, JobHandlerError
from jobhandler.model.jobs import Job, Outcome, Transition
from jobhandler.model.records import JobRef, WorkerInfo
from jobhandler.model.validation import JsonLimits, json_errors
from jobhandler.observe import metrics
from jobhandler.settings import Settings
from jobhandler.worker.completer import Completer
from jobhandler.worker.executor import Executor, Running, StopReason, stopped_outcome
from jobhandler.worker.lineage import ServiceSpawner
from jobhandler.worker.maintenance import Maintenance, Rescuer, every
from jobhandler.worker.notifier import Notifier, notifier_for
from jobhandler.worker.predecessors import incarnation, rescue_predecessors
from jobhandler.worker.producer import Producer
from jobhandler.worker.runners import Runner
from jobhandler.worker.transactions import RunTransactions
from jobhandler.worker.watchdog import LoopWatchdog

log = logging.getLogger("jobhandler.worker")


class Worker:
    """One asyncio worker. ``await worker.run()`` until ``worker.stop()`` is called.

    ``notifier`` is where wake-ups come from; by default this process's App, then the store.
    """

    def __init__(
        self,
        app: App,
        settings: Settings,
        *,
        queues: list[str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.queues = queues or list(settings.queues) or app.tasks.queues() or ["default"]
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._notifier = notifier
        self.runner = Runner(
            settings.app,
            settings.thread_cancel_grace,
            settings.process_concurrency,
            settings.process_max_jobs,
        )
        self.executor = Executor(
            app.tasks, self.runner, app.clock, app.events, app.service.workflows.parent_outcomes
        )
        self.producer = Producer(
            app.service.store,
            app.clock,
            queues=self.queues,
            worker_id=self.id,
            lease=settings.lease,
            poll_interval=settings.poll_interval,
        )
        self.completer = Completer(
            app.service.store,
            self.id,
            app.clock,
            self._outcomes_written,
            min(1.0, settings.poll_interval),
            app.events,
        )
        self.maintenance = Maintenance(app, settings, self.id)
        self._running: dict[str, Running] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = 0.0
        self._incarnation = incarnation()

    @property
    def running_jobs(self) -> list[Job]:
        return [r.job for r in self._running.values()]

    def stop(self) -> None:
        """Stop claiming; running jobs get ``shutdown_timeout`` seconds before being handed back."""
        self.producer.stop()

    # -- the main loop ---------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        app, settings = self.app, self.settings
        stop_metrics = metrics.serve(app.events, settings)  # --metrics-port: this process's metrics
        self._started_at = app.clock()
        await app.service.flow.write_declarations(
            self.queues, [t.name for t in app.tasks]
        )  # limits
        await self._register()
        await rescue_predecessors(app, Rescuer(app, settings), self._info())
        await self.runner.start(app.tasks)
        notifier = self._notifier or notifier_for(app)
        stop_listening = await notifier.listen(self.producer.wake, self._on_cancel)
        services = [
            asyncio.create_task(every(settings.heartbeat_interval, self._heartbeat)),
            asyncio.create_task(every(settings.cancel_check_interval, self._check_cancels)),
            asyncio.create_task(self.maintenance.run()),
        ]
        if settings.loop_block_threshold > 0:
            watchdog = LoopWatchdog(settings.loop_block_threshold, self._describe_task)
            services.append(asyncio.create_task(watchdog.run()))
        completing = asyncio.create_task(self.completer.run())
        log.info("worker %s serving queues %s", self.id, ",".join(self.queues))
        try:
            await self.producer.run(self._free_slots, self._start)
            await self._drain()
        finally:
            await stop_listening()
            await _cancel(services)
            await self.maintenance.resign()
            await _cancel([completing])
            await self.completer.flush()
            await self.runner.close()
            await self._deregister()
            stop_metrics()

    def _describe_task(self, name: str) -> str:
        """An asyncio task's name as the watchdog logs it (called from its thread)."""
        entry = self._running.get(name.removeprefix("job-"))
        return f"task {entry.job.task!r} (job {entry.job.id})" if entry else f"{name!r}"

    def _free_slots(self) -> int:
        """Runs up to ``concurrency``, and outcomes not yet written up to ``concurrency`` more.

        A ``kill -9`` makes both run again (the outcomes it lost too): so it never re-runs
        more than twice the concurrency, however far a stalled store lets the writes fall
        behind. Gating each slot on its own outcome's write would halve that bound, but
        then slots come free a few at a time as writes return, and claims and writes of a
        few jobs each took twice the CPU per job in a drain.
        """
        concurrency, running = self.settings.concurrency, len(self._running)
        behind = max(0, self.completer.unwritten - concurrency)
        return concurrency - running - behind

    def _outcomes_written(self, job_ids: Iterable[str]) -> None:
        self.app.service.signals.finished(job_ids)
        self.producer.wake()  # slots held back for unwritten outcomes may be free now

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

    async def _deregister(self) -> None:
        try:
            await self.app.service.store.deregister_worker(self.id)
        except JobHandlerError as exc:
            log.warning("could not deregister worker %s: %s", self.id, exc)
        log.info("worker %s stopped", self.id)

    # -- one run ---------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        if job.id in self._running:
            # We still run an older attempt of this job: this process stalled past its lease,
            # the job was rescued and came back to us. That run lost; stop it before this one.
            self._stop_run(job.id, StopReason.LOST)
        spawner = ServiceSpawner(self.app.service.workflows, job, self.app.run_sync)
        transactions = self._transactions(job)
        ctx = JobContext(
            *(job.id, job.task, job.attempt, self._record_progress, job.queue),
            spawner=spawner,
            transactor=transactions,
        )
        entry = Running(job, ctx)
        entry.run = asyncio.create_task(self.executor.execute(entry), name=f"job-{job.id}")
        entry.run.add_done_callback(partial(self._settle, entry, transactions))
        self._running[job.id] = entry

    def _transactions(self, job: Job) -> RunTransactions | None:
        """The run's ``ctx.transaction()``; None for a task this worker does not know (the
        executor fails such a job before it could run)."""
        try:
            task = self.app.tasks.get(job.task)
        except JobHandlerError:
            return None
        return RunTransactions(self.app.service.store, job, task, self.app.clock)

    def _settle(
        self,
        entry: Running,
        transactions: RunTransactions | None,
        run: asyncio.Task[Outcome | None],
    ) -> None:
        """A run ended (even one cancelled before it began): forget it and queue its outcome."""
        job = entry.job
        if self._running.get(job.id) is entry:  # not a newer attempt of the same job
            del self._running[job.id]
        self.producer.wake()  # a slot came free
        if transactions is not None and transactions.committed is not None:
            # Completed in the task's own transaction: whatever came after it (a return value,
            # an error, a stop) changes nothing; only the events are told.
            after = None if run.cancelled() or run.exception() else run.result()
            if after is not None and after.transition is not Transition.COMPLETE:
                log.warning(
                    "job %s completed in its transaction; what came after it (%s) is not recorded",
                    job.id,
                    after.error or after.transition,
                )
            self.completer.add(transactions.committed, entry, written=True)
            return
        if entry.stop_reason is StopReason.LOST:
            log.warning("lease lost on job %s (attempt %d): result dropped", job.id, job.attempt)
            return
        if run.cancelled():
            outcome = stopped_outcome(entry)
        elif (error := run.exception()) is not None:
            log.error("running job %s failed in the worker", job.id, exc_info=error)
            return
        else:
            outcome = run.result()
        if outcome is not None:
            # Fenced by this worker too; a workflow parent's end may make its dependents due.
            wakes = outcome.wakes or bool(job.dependents)
            outcome = dataclasses.replace(outcome, wakes=wakes, worker_id=job.worker_id)
            self.completer.add(outcome, entry)

    def _on_cancel(self, job_id: str) -> None:
        self._stop_run(job_id, StopReason.CANCEL)

    def _stop_run(self, job_id: str, reason: StopReason, attempt: int | None = None) -> None:
        entry = self._running.get(job_id)
        if entry is None or entry.stop_reason is not None:
            return
        if attempt is not None and entry.job.attempt != attempt:
            return  # the news is about an older attempt, not the run we hold now
        entry.stop(reason)

    def _record_progress(self, job_id: str, attempt: int, value: Any) -> None:
        # Checked here, in the task's own call: a value no store can write fails the run with
        # a clear error (InvalidResult), instead of failing the batched write of every job.
        limits = JsonLimits(self.settings.max_json_depth, self.settings.max_payload_bytes)
        if problems := json_errors(value, ["progress"], limits):
            entry = self._running.get(job_id)
            raise InvalidResult(entry.job.task if entry else job_id, problems[0])
        if self._loop is not None:  # called from a task's thread too: hand over to the loop
            self._loop.call_soon_threadsafe(
                self.completer.add_progress, JobRef(job_id, attempt), value
            )

    # -- leases and cancels ----------------------------------------------------------------

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.settings.concurrency,
            started_at=self._started_at,
            last_seen_at=self.app.clock(),
            running=len(self._running),
            incarnation=self._incarnation,
        )

    async def _register(self) -> None:
        await self.app.service.store.register_worker(self._info())

    async def _heartbeat(self) -> None:
        refs = [r.ref for r in self._running.values()]
        reply = await self.app.service.store.heartbeat(
            self.id, refs, self.app.clock(), self.settings.lease
        )
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
        for job_id in await self.app.service.store.cancel_requests(self.id, refs):
            self._stop_run(job_id, StopReason.CANCEL)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
