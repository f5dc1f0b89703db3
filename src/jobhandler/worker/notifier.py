"""Wake-ups, behind one interface: "jobs may be due" and "someone asked to cancel this job".

Two sources feed a worker: the App in its own process (a submit or cancel made here is known
at once) and the store, for what other processes do (the SQLite file watcher, PostgreSQL
LISTEN). Both are hints only, possibly coalesced, duplicated or lost: polling stays the truth,
so a missed wake-up costs latency, never a job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from jobhandler.app import App
from jobhandler.store.contract import Store

OnSubmit = Callable[[], None]
OnCancel = Callable[[str], None]
Stop = Callable[[], Awaitable[None]]


class Notifier(Protocol):
    async def listen(self, on_submit: OnSubmit, on_cancel: OnCancel) -> Stop:
        """Start delivering wake-ups (callbacks run on the event loop); returns how to stop."""
        ...


class InProcessNotifier:
    """Submits and cancels made through this process's App."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def listen(self, on_submit: OnSubmit, on_cancel: OnCancel) -> Stop:
        unsubscribe = [
            self.app.service.signals.on_submit(on_submit),
            self.app.service.signals.on_cancel(on_cancel),
        ]

        async def stop() -> None:
            for cancel in unsubscribe:
                cancel()

        return stop


class StoreNotifier:
    """Submits and cancels made by other processes, as the store delivers them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def listen(self, on_submit: OnSubmit, on_cancel: OnCancel) -> Stop:
        return await self.store.listen(on_submit, on_cancel)


class Notifiers:
    """Several notifiers as one: each callback fires for any of them."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = list(notifiers)

    async def listen(self, on_submit: OnSubmit, on_cancel: OnCancel) -> Stop:
        stops: list[Stop] = []
        try:
            for notifier in self.notifiers:
                stops.append(await notifier.listen(on_submit, on_cancel))
        except BaseException:
            await _stop_all(stops)
            raise

        async def stop() -> None:
            await _stop_all(stops)

        return stop


async def _stop_all(stops: list[Stop]) -> None:
    for stop in reversed(stops):
        await stop()


def notifier_for(app: App) -> Notifier:
    """What a worker in this process hears: its own App first, then the store."""
    return Notifiers([InProcessNotifier(app), StoreNotifier(app.service.store)])
