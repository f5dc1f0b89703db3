"""The blocking-loop watchdog: notices an ``async def`` task that blocks the event loop.

An ``async def`` task that calls something blocking (``time.sleep``, a sync HTTP client, a
long computation) holds the worker's loop: no other job advances, heartbeats stop, timeouts
and cancels cannot get in, and under ``serve`` the API stops answering. Nothing on the loop can
notice that, so a thread does: the loop stamps the time every ``threshold / 4`` seconds, and the
thread warns when the stamp is older than ``threshold``, naming the asyncio task the loop is in
(``job-<id>`` for a job, with its task's name) and the line it is stuck on. The loop logs how
long it was blocked when it runs again. The fix is in the task: see docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger("jobhandler.watchdog")

Describe = Callable[[str], str]  # an asyncio task's name -> what to call it in the log


class LoopWatchdog:
    def __init__(self, threshold: float, describe: Describe = str) -> None:
        self.threshold = threshold
        self.describe = describe
        self._tick = max(0.01, threshold / 4)
        self._beat = time.monotonic()
        self._stopped = threading.Event()

    async def run(self) -> None:
        """Stamp the loop's liveness until cancelled; the watching thread lives as long."""
        loop = asyncio.get_running_loop()
        self._stopped.clear()
        watcher = threading.Thread(
            target=self._watch,
            args=(loop, threading.get_ident()),
            name="jobhandler-loop-watchdog",
            daemon=True,
        )
        watcher.start()
        try:
            while True:
                beat = self._beat = time.monotonic()
                await asyncio.sleep(self._tick)
                # Said from the loop itself, at its first tick back: never lost to a stop.
                if (stalled := time.monotonic() - beat - self._tick) > self.threshold:
                    log.warning("event loop ran again after %.1f s blocked", stalled)
        finally:
            self._stopped.set()

    def _watch(self, loop: asyncio.AbstractEventLoop, loop_thread: int) -> None:
        reported: float | None = None  # the stamp of the stall already warned about
        while not self._stopped.wait(self._tick):
            beat = self._beat
            lag = time.monotonic() - beat
            if lag > self.threshold and reported != beat:
                reported = beat
                log.warning(
                    "event loop blocked for %.1f s by %s, at %s: an async task is making a"
                    " blocking call (see docs/reliability.md, 'Blocking the event loop')",
                    lag,
                    self._culprit(loop),
                    _where(loop_thread),
                )

    def _culprit(self, loop: asyncio.AbstractEventLoop) -> str:
        try:
            current = asyncio.current_task(loop)
            return "nothing" if current is None else self.describe(current.get_name())
        except Exception:  # read from another thread: a best effort, never a crash
            return "an unknown task"


def _where(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "an unknown line"
    last = traceback.extract_stack(frame)[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"
