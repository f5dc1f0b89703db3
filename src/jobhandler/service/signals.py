"""In-process wake-ups: a submit, a cancel request or finished jobs, told at once to whoever in
this process listens (the worker's notifier, requests waiting for jobs, the live feed).

Other processes learn the same things from the store (NOTIFY, datagrams, polling); these only
save the wait when the news is made here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Unsubscribe = Callable[[], None]


class Signals:
    def __init__(self) -> None:
        self._submitted: list[Callable[[], None]] = []
        self._cancel_requested: list[Callable[[str], None]] = []
        self._finished: list[Callable[[Iterable[str] | None], None]] = []

    def on_submit(self, callback: Callable[[], None]) -> Unsubscribe:
        self._submitted.append(callback)
        return lambda: self._submitted.remove(callback)

    def on_cancel(self, callback: Callable[[str], None]) -> Unsubscribe:
        self._cancel_requested.append(callback)
        return lambda: self._cancel_requested.remove(callback)

    def on_finish(self, callback: Callable[[Iterable[str] | None], None]) -> Unsubscribe:
        self._finished.append(callback)
        return lambda: self._finished.remove(callback)

    def submitted(self) -> None:
        """Jobs were stored (or made due again): a worker here may claim them now."""
        for wake in self._submitted:
            wake()

    def cancel_requested(self, job_id: str) -> None:
        """Someone asked to stop a running job: its worker, if it is here, stops it now."""
        for notify in self._cancel_requested:
            notify(job_id)

    def finished(self, job_ids: Iterable[str] | None = None) -> None:
        """These jobs (every job, for None) may have reached a final status."""
        ids = None if job_ids is None else list(job_ids)
        for wake in self._finished:
            wake(ids)
