"""How a task body runs, and how it is stopped on cancel or timeout.

- ``async``: a coroutine on the worker's loop. Cancel and timeout cancel it (CancelledError
  is raised at its next ``await``).
- ``thread``: a plain function in its own thread. Python cannot stop a thread, so cancel and
  timeout set ``ctx.cancelled``, wait ``thread_cancel_grace`` seconds for it to return, then
  abandon it: the job is settled and its late result is dropped.
- ``process``: a child Python process that imports the app, runs the task and reports back
  as JSON. Cancel and timeout terminate it (SIGTERM), then kill it after the grace period.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from typing import Any

from jobhandler.context import JobContext
from jobhandler.errors import JobHandlerError, PermanentFailure, RetryLater
from jobhandler.tasks import Task


class JobTimeout(JobHandlerError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s")


class ChildFailed(JobHandlerError):
    """The task raised in a process runner; carries the child's message and traceback."""

    def __init__(self, message: str, traceback: str) -> None:
        super().__init__(message)
        self.traceback = traceback


class Runner:
    def __init__(self, app_ref: str, cancel_grace: float, process_slots: int) -> None:
        self.app_ref = app_ref
        self.cancel_grace = cancel_grace
        # Child processes cost a core and tens of MB each: they queue for a slot here.
        self._process_slots = asyncio.Semaphore(process_slots)

    async def run(
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        """Run the task's body and return its result as JSON.

        Raises JobTimeout, CancelledError (when the run was stopped) or what the task raised.
        """
        if task.isolation == "process":
            async with self._process_slots:
                return await self._in_process(task, payload, ctx, timeout)  # the child dumps it
        if task.isolation == "thread":
            return task.dump_result(await self._in_thread(task, payload, ctx, timeout))
        return task.dump_result(await self._on_loop(task, payload, ctx, timeout))

    async def _on_loop(
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        args, kwargs = task.call_args(payload, ctx)
        coro = task.fn(*args, **kwargs)
        if not asyncio.iscoroutine(coro):  # a def marked isolation="async": run it inline
            return coro
        if timeout is None:  # the common case, kept off the hot path
            return await coro
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await coro
        except TimeoutError:
            if deadline.expired():
                ctx.cancel()
                raise JobTimeout(timeout or 0) from None
            raise

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
        threading.Thread(target=body, name=f"job-{ctx.job_id}", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            if done.done():
                return done.result()
            ctx.cancel()
            await self._grace(done)
            raise JobTimeout(timeout or 0) from None
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
        self, task: Task[Any, Any], payload: Any, ctx: JobContext, timeout: float | None
    ) -> Any:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobhandler.worker.child",
            self.app_ref,
            task.name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        request = {"payload": payload, "job_id": ctx.job_id, "attempt": ctx.attempt}
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(request).encode() + b"\n")
        await child.stdin.drain()
        child.stdin.close()
        try:
            async with asyncio.timeout(timeout) as deadline:
                report = await _read_reports(child.stdout, ctx)
                code = await child.wait()
        except TimeoutError:
            await self._stop_child(child)
            if deadline.expired():
                raise JobTimeout(timeout or 0) from None
            raise
        except asyncio.CancelledError:
            await self._stop_child(child)
            raise
        if report is None:
            raise ChildFailed(f"task process exited with code {code} before reporting", "")
        if report["ok"]:
            return report["result"]
        if report.get("kind") == "retry_later":
            raise RetryLater(report["delay"], report["error"])
        if report.get("kind") == "permanent":
            raise PermanentFailure(report["error"])
        raise ChildFailed(report["error"], report.get("traceback", ""))

    async def _stop_child(self, child: asyncio.subprocess.Process) -> None:
        if child.returncode is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(child.wait()), self.cancel_grace)
        except TimeoutError:
            child.kill()
            await child.wait()


def _settle(done: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(value)


async def _read_reports(stream: asyncio.StreamReader, ctx: JobContext) -> dict[str, Any] | None:
    """Progress lines pass through to the context; the last line is the outcome."""
    while line := await stream.readline():
        message = json.loads(line)
        if "progress" in message:
            ctx.progress(message["progress"])
        else:
            return dict(message)
    return None
