"""Group commit: concurrent submits in one process share one write transaction.

While one insert is in flight, later submits wait in line; when it commits, everything that
queued meanwhile goes out as the next single insert. A lone submit goes straight through, so
this adds no latency when there is no concurrency, and under load a commit (an fsync) is paid
once per batch instead of once per job.

Members stay isolated: when a merged write fails, nothing of it was stored (it is one
transaction), and each member is written again on its own, so a row that fails at write time
fails only its own caller. Errors listed in ``fail_all`` (a lost store) fail every member at once:
writing them one by one would only fail again, slower.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class GroupCommit(Generic[In, Out]):
    def __init__(
        self,
        write: Callable[[list[In]], Awaitable[list[Out]]],
        fail_all: tuple[type[Exception], ...] = (),
    ) -> None:
        self._write = write
        self._fail_all = fail_all
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
            try:
                results = await self._write([item for items, _ in batch for item in items])
            except Exception as exc:
                if len(batch) == 1 or isinstance(exc, self._fail_all):
                    raise
                await self._write_each(batch)
            else:
                start = 0
                for items, done in batch:
                    if not done.done():
                        done.set_result(results[start : start + len(items)])
                    start += len(items)
        except BaseException as exc:
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._flush_waiting()

    async def _write_each(self, batch: list[tuple[list[In], asyncio.Future[list[Out]]]]) -> None:
        """After a merged write failed: each member alone, so only the bad ones fail."""
        for items, done in batch:
            if done.done():  # its caller went away
                continue
            try:
                results = await self._write(items)
            except Exception as exc:
                if isinstance(exc, self._fail_all):
                    raise  # the rest would fail the same way: _write_batch fails them all
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(results)


def _fail(batch: list[tuple[list[In], asyncio.Future[list[Out]]]], exc: BaseException) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)
