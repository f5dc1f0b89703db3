"""How a task body runs, and how it is stopped on cancel or timeout.

- ``async``: a coroutine on the worker's loop. Cancel and timeout cancel it (CancelledError
  is raised at its next ``await``). A coroutine that blocks the loop cannot be interrupted:
  if it overran its timeout it still ends timed out, with an error that says why, and the
  watchdog (worker/watchdog.py) logs the block while it happens.
- ``thread``: a plain function in its own thread. Python cannot stop a thread, so cancel and
  timeout set ``ctx.cancelled``, wait ``thread_cancel_grace`` seconds for it to return, then
  abandon it: the job is settled and its late result is dropped. The job's error says that the
  thread may still be running.
- ``process``: a warm child process (worker/pool.py) that imported the app once, runs the
  task and reports back as JSON. Cancel and timeout terminate it (SIGTERM), then kill it after
  the grace period; a replacement is started at once.

A task's ``soft_timeout`` asks first (``SoftStop``): ctx.cancelled in each runner, plus
CancelledError at an async task's next await and SIGUSR1 to a process task's child.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

from jobhandler.model.context import JobContext, parents_as_json
from jobhandler.model.errors import JobHandlerError, PermanentFailure, RetryLater
from jobhandler.model.jobs import NewJob
from jobhandler.model.tasks import Task, TaskRegistry
from jobhandler.worker.pool import Child, ProcessPool


class JobTimeout(JobHandlerError):
    def __init__(self, seconds: float, why: str = "") -> None:
        super().__init__(f"timed out after {seconds:g} s" + (f"; {why}" if why else ""))


# What a job's error says when its run could not be stopped, so the user reads it on the job.
THREAD_LEFT_RUNNING = (
    "its thread could not be stopped (Python cannot kill a thread) and may still be running,"
    " with its side effects; its result will be dropped"
)
LOOP_BLOCKED = (
    "the task blocked the event loop, so it could not be interrupted and ran {ran:.1f} s to the"
    " end (use a def task, or await asyncio.to_thread(...) for blocking calls)"
)


SOFT_STOPPED = "soft timeout: asked to stop, it did"
ASK_AGAIN = 0.2  # seconds between a soft timeout's signals to a process task's child


class SoftStop:
    """The soft timeout's alarm for one run: sets ctx.cancelled, then stops what it can."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.fired = False
        self.scope: asyncio.Timeout | None = None  # an async task's: expired now, at its await
        self.child: Child | None = None  # a process task's: signalled

    def fire(self) -> None:
        self.fired = True
        self.ctx.cancel()  # first, so the task sees the flag when its await raises
        if self.scope is not None:
            self.scope.reschedule(asyncio.get_running_loop().time())
        self.signal_child()

    def signal_child(self) -> None:
        """SIGUSR1 to the run's child, again every ASK_AGAIN seconds while it holds the run: a
        child still starting, or not yet reading the request, has no run to tell and drops it
        (under load that took longer than a short soft timeout, and the run went on to its
        hard timeout). Asking a run that was told already changes nothing."""
        if self.child is None or not self.child.alive:
            return
        with contextlib.suppress(ProcessLookupError):
            self.child.process.send_signal(signal.SIGUSR1)
        asyncio.get_running_loop().call_later(ASK_AGAIN, self.signal_child)


class ChildFailed(JobHandlerError):
    """The task raised in a process runner; carries the child's message and traceback."""

    def __init__(self, message: str, traceback: str) -> None:
        super().__init__(message)
        self.traceback = traceback


class Runner:
    def __init__(
        self, app_ref: str, cancel_grace: float, process_slots: int, process_max_jobs: int = 100
    ) -> None:
        self.app_ref = app_ref
        self.cancel_grace = cancel_grace
        self.pool = ProcessPool(app_ref, process_slots, process_max_jobs, cancel_grace)

    async def start(self, tasks: TaskRegistry) -> None:
        """Warm a child process now if any task needs one."""
        if any(t.isolation == "process" for t in tasks):
            await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def run(
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        """Run the task's body and return its result as JSON.

        Raises JobTimeout, CancelledError (when the run was stopped) or what the task raised.
        """
        soft = task.options.soft_timeout
        if soft is not None and (timeout is None or soft < timeout):
            return await self._soft(task, payload, ctx, timeout, soft)
        if task.isolation == "process":
            return await self._in_process(task, payload, ctx, timeout)  # the child dumps it
        if task.isolation == "thread":
            return task.dump_result(await self._in_thread(task, payload, ctx, timeout))
        return task.dump_result(await self._on_loop(task, payload, ctx, timeout))

    async def _soft(
        self,
        task: Task[Any, Any],
        payload: Any,
        ctx: JobContext,
        timeout: float | None,
        soft: float,
    ) -> Any:
        """A run with a soft timeout: at ``soft`` seconds it is asked to stop (ctx.cancelled; an
        async task on the loop also gets CancelledError at its next await; a process task's
        child gets SIGUSR1, which sets its ctx.cancelled). What it returns still completes it;
        what it raises after the ask is a timeout, retried by the task's policy."""
        asked = SoftStop(ctx)
        timer = asyncio.get_running_loop().call_later(soft, asked.fire)
        try:
            if task.isolation == "process":
                return await self._in_process(task, payload, ctx, timeout, asked)
            if task.isolation == "thread":
                return task.dump_result(await self._in_thread(task, payload, ctx, timeout))
            try:
                async with asyncio.timeout(None) as scope:
                    asked.scope = scope
                    value = await self._on_loop(task, payload, ctx, timeout)
            except TimeoutError:
                if scope.expired():  # our CancelledError came back out: it stopped
                    raise JobTimeout(soft, SOFT_STOPPED) from None
                raise
            return task.dump_result(value)
        except (JobTimeout, RetryLater, PermanentFailure):
            raise  # the hard timeout, or the task's own say
        except Exception as exc:
            if asked.fired:
                raise JobTimeout(soft, f"{SOFT_STOPPED}: {type(exc).__name__}: {exc}") from exc
            raise
        finally:
            timer.cancel()

    async def _on_loop(
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        args, kwargs = task.call_args(payload, ctx)
        coro = task.fn(*args, **kwargs)
        if not asyncio.iscoroutine(coro):  # a def marked isolation="async": run it inline
            return coro
        if timeout is None:  # the common case, kept off the hot path
            return await coro
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(timeout) as deadline:
                value = await coro
        except TimeoutError:
            if deadline.expired():
                ctx.cancel()
                raise JobTimeout(timeout or 0) from None
            raise
        if (ran := loop.time() - started) > timeout:
            # It overran without awaiting (a blocking call): the cancel never got in. It still
            # counts as timed out, as it would have had it awaited.
            raise JobTimeout(timeout, LOOP_BLOCKED.format(ran=ran))
        return value

    async def _in_thread(
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        args, kwargs = task.call_args(payload, ctx)

        def body() -> None:
            try:
                value = task.fn(*args, **kwargs)
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, value, None)

        # A thread of its own, not a pool: an abandoned run must never starve the next jobs.
        # It runs in a copy of this context, so the run's trace span and log fields follow it.
        run = contextvars.copy_context().run
        threading.Thread(target=run, args=(body,), name=f"job-{ctx.job_id}", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            if done.done():
                return done.result()
            ctx.cancel()
            await self._grace(done)
            raise JobTimeout(timeout or 0, "" if done.done() else THREAD_LEFT_RUNNING) from None
        except asyncio.CancelledError:
            ctx.cancel()
            await self._grace(done)
            raise

    async def _grace(self, done: asyncio.Future[Any]) -> None:
        """Give a flagged thread a moment to return; its outcome is not used either way."""
        await asyncio.wait([done], timeout=self.cancel_grace)
        if done.done() and not done.cancelled():
            done.exception()  # mark it retrieved, so asyncio does not log it

    async def _in_process(
        self,
        task: Task[Any, Any],
        payload: Any,
        ctx: JobContext,
        timeout: float | None,
        asked: SoftStop | None = None,
    ) -> Any:
        request = {"task": task.name, "payload": payload, "job_id": ctx.job_id}
        request["attempt"] = ctx.attempt
        if ctx.parent_results:
            request["parents"] = parents_as_json(ctx.parent_results)
        async with self.pool.child() as child, _holding(asked, child):
            if asked is not None and asked.fired:  # it fired while we waited for a free child
                asked.fire()
            stdin, stdout = child.process.stdin, child.process.stdout
            assert stdin is not None and stdout is not None
            try:
                async with asyncio.timeout(timeout) as deadline:
                    stdin.write(json.dumps(request).encode() + b"\n")
                    await stdin.drain()
                    report = await _read_reports(stdout, ctx, stdin)
            except TimeoutError:
                await self.pool.retire(child)
                if deadline.expired():
                    raise JobTimeout(timeout or 0) from None
                raise
            except asyncio.CancelledError:
                await self.pool.retire(child)
                raise
            except ConnectionError:  # it died before it read the request
                report = None
            if report is None:  # it died mid-job: the block raising retires it
                code = await child.process.wait()
                raise ChildFailed(f"task process exited with code {code} before reporting", "")
        if report["ok"]:
            return report["result"]
        if report.get("kind") == "retry_later":
            raise RetryLater(report["delay"], report["error"])
        if report.get("kind") == "permanent":
            raise PermanentFailure(report["error"])
        raise ChildFailed(report["error"], report.get("traceback", ""))


@contextlib.asynccontextmanager
async def _holding(asked: SoftStop | None, child: Child) -> AsyncIterator[None]:
    """The soft timeout may signal ``child`` only while this run holds it, never once it is
    back in the pool or another run's."""
    if asked is not None:
        asked.child = child
    try:
        yield
    finally:
        if asked is not None:
            asked.child = None


def _settle(done: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(value)


async def _read_reports(
    stream: asyncio.StreamReader, ctx: JobContext, replies: asyncio.StreamWriter
) -> dict[str, Any] | None:
    """Progress lines pass through to the context, spawn requests to its spawner (answered on
    the child's stdin); the last line is the outcome."""
    while line := await stream.readline():
        message = json.loads(line)
        if "progress" in message:
            ctx.progress(message["progress"])
        elif "spawn" in message:
            replies.write(json.dumps(await _spawned(ctx, message)).encode() + b"\n")
            await replies.drain()
        else:
            return dict(message)
    return None


async def _spawned(ctx: JobContext, message: dict[str, Any]) -> dict[str, Any]:
    if ctx.spawner is None:
        return {"error": "ctx.spawn works only in a job that a worker runs"}
    try:
        return {"id": await ctx.spawner.spawn(NewJob(**message["spawn"]), message.get("key"))}
    except JobHandlerError as exc:
        return {"error": str(exc)}
