"""What a running task sees of its job: identity, attempt, cancellation and progress."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any


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
    ) -> None:
        self.job_id = job_id
        self.task = task
        self.attempt = attempt
        self.logger = logging.getLogger(f"jobhandler.task.{task}")
        self._cancel = threading.Event()
        self._on_progress = on_progress

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or its lease lost: stop as soon as you can."""
        return self._cancel.is_set()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block a thread task until cancelled (True) or ``timeout`` seconds passed (False)."""
        return self._cancel.wait(timeout)

    def progress(self, value: Any) -> None:
        """Record progress (any JSON value, such as a fraction or ``{"done": 3, "of": 10}``)."""
        self._on_progress(self.job_id, self.attempt, value)

    def cancel(self) -> None:
        self._cancel.set()
