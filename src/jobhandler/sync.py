"""The sync API: an App's coroutines run from code without an event loop (Flask, Django, scripts).

The convention: every async call has a sync form that blocks until it is done.

- ``with app.connected_sync(settings):`` is ``async with app.connected(settings):``; or, for a
  web app's whole life, ``app.sync.connect(settings)`` once (closed at interpreter exit, or by
  ``app.sync.close()``).
- ``task.enqueue_sync(...)``, ``task.enqueue_many_sync(...)``, and on the handle they return
  ``wait_sync``, ``get_result_sync``, ``refresh_sync``, ``cancel_sync``; for workflows
  ``wf.enqueue_sync()``, ``chain(...).enqueue_sync()``, the handle's ``wait_sync`` and others,
  and ``ctx.spawn_sync`` in a ``def`` task.
- anything else: ``app.run_sync(app.get_job(job_id))``, ``app.run_sync(app.queue_stats())``.

The App runs on one event loop: a background thread's, started by ``connect`` (one per App),
or the loop it was connected on with ``async with app.connected()``, so a thread (a sync task
in a worker, say) may call ``*_sync`` too. Each call hands its coroutine to that loop with
``asyncio.run_coroutine_threadsafe`` and waits for it, so calls from many threads are safe:
they share the App's connections and its group commit.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from jobhandler.model.errors import JobHandlerError
from jobhandler.settings import Settings

T = TypeVar("T")


class SyncUnavailable(JobHandlerError):
    """A sync call could not run: the App is not connected, or it was called on its own loop."""


class SyncBridge:
    """One App's way in from sync code; ``loop`` is set by ``App.connected`` while connected."""

    def __init__(
        self, connect: Callable[[Settings | None], AbstractAsyncContextManager[Any]]
    ) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._connect = connect
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._connection: AbstractAsyncContextManager[Any] | None = None
        self._exit_hook = False

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the App's loop and return its value (or raise its error)."""
        loop = self.loop
        problem = _problem(loop)
        if problem is not None or loop is None:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never started: no "was never awaited" warning
            raise SyncUnavailable(problem or "the app is not connected")
        future = asyncio.run_coroutine_threadsafe(_await(awaitable), loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # a KeyboardInterrupt here stops the call too
            raise

    def connect(self, settings: Settings | None = None) -> None:
        """Connect the App on a background thread's loop, until ``close()`` or exit."""
        with self._lock:
            if self._connection is not None or self.loop is not None:
                raise SyncUnavailable("the app is connected already")
            loop = self._start_thread()
            connection = self._connect(settings)
            try:
                asyncio.run_coroutine_threadsafe(_enter(connection), loop).result()
            except BaseException:
                self._stop_thread()
                raise
            self._connection = connection
            if not self._exit_hook:
                _at_exit(self.close)
                self._exit_hook = True

    def close(self) -> None:
        """Disconnect what ``connect`` connected and stop its thread; nothing if not connected."""
        with self._lock:
            connection, self._connection = self._connection, None
            try:
                if connection is not None and self._thread_loop is not None:
                    exit_ = connection.__aexit__(None, None, None)
                    asyncio.run_coroutine_threadsafe(_await(exit_), self._thread_loop).result()
            finally:
                self._stop_thread()

    def _start_thread(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name="jobhandler-sync", daemon=True)
        thread.start()
        self._thread, self._thread_loop = thread, loop
        return loop

    def _stop_thread(self) -> None:
        thread, loop = self._thread, self._thread_loop
        self._thread = self._thread_loop = None
        if thread is not None and loop is not None:
            # As asyncio.run ends: what the App left running (a waiter's watch) is cancelled.
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


def _problem(loop: asyncio.AbstractEventLoop | None) -> str | None:
    if loop is None:
        return "the app is not connected: use `with app.connected_sync(settings):`"
    if loop.is_closed():
        return "the app's event loop is closed"
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if running is loop:  # blocking the loop on itself would never return
        return "a *_sync call on the app's own event loop: await the async method instead"
    return None


def _at_exit(close: Callable[[], None]) -> None:
    """Call ``close`` as the interpreter exits, before thread pools refuse work.

    ``atexit`` runs too late: by then ``concurrent.futures`` has shut its executors (the SQLite
    store's thread among them), so the store could not close. The hook threading runs before
    that (last registered, first called) is the one ``concurrent.futures`` itself uses.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # another Python: the best there is
        atexit.register(close)
    else:
        register(close)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _cancel_the_rest() -> None:
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


async def _enter(connection: AbstractAsyncContextManager[Any]) -> None:
    await connection.__aenter__()
