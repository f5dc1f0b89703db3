"""What a running task sees of its job: identity, attempt, cancellation, progress and a logger."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

_EVENTS = threading.Lock()  # makes each context's event once, for waiting threads


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """A task's logger: every record carries the job's fields (``job_id``, ``task``, ``queue``,
    ``attempt``), beside any ``extra`` the call gives (the call's win)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class JobContext:
    """Handed to a task that declares a parameter annotated ``JobContext``.

    It is safe to use from the task's own thread: ``cancelled`` is a thread-safe flag and
    ``progress()`` only records the newest value, which the worker writes in its next batch.
    """

    def __init__(
        self,
        job_id: str,
        task: str,
        attempt: int,
        on_progress: Callable[[str, int, Any], None],
        queue: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.task = task
        self.attempt = attempt
        self.queue = queue
        self._logger: JobLogger | None = None
        self._cancelled = False
        self._event: threading.Event | None = None  # made only for a task that waits on it
        self._on_progress = on_progress

    @property
    def logger(self) -> JobLogger:
        """Log through this: ``jobhandler.task.<task>``, each record with the job's fields.

        Made on first use: most runs never log, and a run is the worker's hot path.
        """
        if self._logger is None:
            fields = {"job_id": self.job_id, "task": self.task, "attempt": self.attempt}
            if self.queue is not None:
                fields["queue"] = self.queue
            self._logger = JobLogger(logging.getLogger(f"jobhandler.task.{self.task}"), fields)
        return self._logger

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or its lease lost: stop as soon as you can."""
        return self._cancelled

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block a thread task until cancelled (True) or ``timeout`` seconds passed (False)."""
        with _EVENTS:
            if self._event is None:
                self._event = threading.Event()
        # Published before the flag is read, and cancel() sets the flag before it reads the
        # event: one of the two sides always sees the other.
        if self._cancelled:
            self._event.set()
        return self._event.wait(timeout)

    def progress(self, value: Any) -> None:
        """Record progress (any JSON value, such as a fraction or ``{"done": 3, "of": 10}``)."""
        self._on_progress(self.job_id, self.attempt, value)

    def cancel(self) -> None:
        self._cancelled = True
        if (event := self._event) is not None:
            event.set()
