"""Warm child processes for isolation="process": started ahead, reused, recycled.

Starting a Python interpreter and importing the app costs most of a second; a job that does
milliseconds of work should not pay it. So a worker keeps children that have imported the app
(``jobhandler.worker.child APP``, run as ``__main__`` by a one-line bootstrap, ``_CHILD_MAIN``)
and sends each one job after another:

- one child is started with the worker (when its app has process tasks); more start on demand,
  up to ``process_concurrency``, and stay warm once they have run a job;
- a child is retired after ``process_max_jobs`` jobs (whatever a task leaks goes with it), and
  when it was killed on a timeout or cancel, or died; a replacement starts at once in the
  background, so the next job finds a warm one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from jobhandler.handover import environment_without_secrets

Process = asyncio.subprocess.Process
# ``python -m jobhandler.worker.child``, with SIGUSR1 (a soft timeout's ask, worker/runners.py)
# ignored from the first line: its default action would kill a child still importing the app.
_CHILD_MAIN = (
    "import signal; signal.signal(signal.SIGUSR1, signal.SIG_IGN); import runpy;"
    " runpy.run_module('jobhandler.worker.child', run_name='__main__', alter_sys=True)"
)


@dataclass(eq=False)
class Child:
    process: Process
    jobs: int = 0

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class ProcessPool:
    def __init__(self, app_ref: str, size: int, max_jobs: int, stop_grace: float) -> None:
        self.app_ref = app_ref
        self.size = size
        self.max_jobs = max_jobs
        self.stop_grace = stop_grace
        # Child processes cost a core and tens of MB each: jobs queue for a slot here.
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Child] = []
        self._children: set[Child] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self, warm: int = 1) -> None:
        """Start ``warm`` children now; they import the app while the worker gets going."""
        for _ in range(min(warm, self.size)):
            self._idle.append(await self._spawn())

    @contextlib.asynccontextmanager
    async def child(self) -> AsyncIterator[Child]:
        """A warm child for one job. Raising out of the block (or killing it) retires it."""
        async with self._slots:
            child = self._take_idle() or await self._spawn()
            reusable = False
            try:
                yield child
                child.jobs += 1
                reusable = True
            finally:
                if reusable and child.alive and child.jobs < self.max_jobs and not self._closed:
                    self._idle.append(child)
                else:
                    await self.retire(child)

    async def retire(self, child: Child) -> None:
        """Stop a child (stdin closed, then SIGTERM, then SIGKILL) and start its replacement."""
        if child not in self._children:
            return
        self._children.discard(child)
        if child in self._idle:
            self._idle.remove(child)
        await self._stop(child)
        if not self._closed and len(self._children) + len(self._starting) < self.size:
            replacing = asyncio.create_task(self._replace())
            self._starting.add(replacing)
            replacing.add_done_callback(self._starting.discard)

    async def close(self) -> None:
        self._closed = True
        for starting in list(self._starting):
            starting.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.gather(*(self._stop(c) for c in list(self._children)))
        self._children.clear()
        self._idle.clear()

    def _take_idle(self) -> Child | None:
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                return child
            self._children.discard(child)  # died while idle (killed from outside)
        return None

    async def _spawn(self) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD_MAIN,
            self.app_ref,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Already so under the CLI; a worker an application starts may still hold them.
            env=environment_without_secrets(),
        )
        child = Child(process)
        self._children.add(child)
        return child

    async def _replace(self) -> None:
        child = await self._spawn()
        if self._closed:
            await self._stop(child)
        else:
            self._idle.append(child)

    async def _stop(self, child: Child) -> None:
        process = child.process
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()  # a child between jobs exits on end of input
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), self.stop_grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
