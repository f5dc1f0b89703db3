"""Group commit: concurrent submits in one process share one write transaction.

While one insert is in flight, later submits wait in line; when it commits, everything that
queued meanwhile goes out as the next single insert. A lone submit goes straight through, so
this adds no latency when there is no concurrency, and under load a commit (an fsync) is paid
once per batch instead of once per job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class GroupCommit(Generic[In, Out]):
    def __init__(self, write: Callable[[list[In]], Awaitable[list[Out]]]) -> None:
        self._write = write
        self._waiting: list[tuple[list[In], asyncio.Future[list[Out]]]] = []
        self._busy = False

    async def submit(self, items: list[In]) -> list[Out]:
        """Write ``items`` (all or none, with whatever else is queued) and return their results."""
        if self._busy:
            done: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
            self._waiting.append((items, done))
            return await done
        self._busy = True
        try:
            return await self._write(items)
        finally:
            self._flush_waiting()

    def _flush_waiting(self) -> None:
        if not self._waiting:
            self._busy = False
            return
        batch, self._waiting = self._waiting, []
        # The next write runs as a task of its own: the caller that finished need not wait.
        asyncio.get_running_loop().create_task(self._write_batch(batch))

    async def _write_batch(self, batch: list[tuple[list[In], asyncio.Future[list[Out]]]]) -> None:
        try:
            results = await self._write([item for items, _ in batch for item in items])
        except BaseException as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            start = 0
            for items, done in batch:
                if not done.done():
                    done.set_result(results[start : start + len(items)])
                start += len(items)
        finally:
            self._flush_waiting()
