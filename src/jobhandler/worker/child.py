"""The child side of the process runner: ``python -m jobhandler.worker.child APP``.

A warm child: it imports the app once, then runs one job per JSON request line on stdin, and
writes JSON lines (progress, then one outcome per job) to what was stdout (the task's own prints
go to stderr, so they cannot garble the report). It exits when stdin closes (the worker recycles
it) and dies with the worker: a result nobody can read is not worth a core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from jobhandler.app import App, load_app
from jobhandler.model.context import JobContext, parent_results
from jobhandler.model.errors import JobHandlerError, PermanentFailure, RetryLater
from jobhandler.model.jobs import NewJob
from jobhandler.model.redact import install_log_redaction

Send = Callable[[dict[str, Any]], None]
# The context of the job running now, for the soft timeout's SIGUSR1 (worker/runners.py).
_running: list[JobContext] = []


def _asked_to_stop(_signum: int, _frame: object) -> None:
    for ctx in _running:
        ctx.cancel()


def exit_with_parent(interval: float = 0.2) -> None:
    """Exit when the worker that started us is gone (a kill -9 gives us no signal: we only
    notice that we were re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="jobhandler-parent-watch", daemon=True).start()


class PipeSpawner:
    """``ctx.spawn`` in a child: the worker stores the child job and answers on our stdin."""

    def __init__(self, send: Send, replies: IO[str]) -> None:
        self._send = send
        self._replies = replies

    async def spawn(self, new: NewJob, key: str | None) -> str:
        return self.spawn_sync(new, key)  # one job at a time here: a short blocking call

    def spawn_sync(self, new: NewJob, key: str | None) -> str:
        self._send({"spawn": dataclasses.asdict(new), "key": key})
        reply = json.loads(self._replies.readline() or '{"error": "the worker went away"}')
        if "error" in reply:
            raise JobHandlerError(reply["error"])
        return str(reply["id"])


def run_one(
    app: App,
    request: dict[str, Any],
    loop: asyncio.AbstractEventLoop,
    send: Send,
    replies: IO[str] | None = None,
) -> None:
    """Run one job and send its outcome; the task's exceptions become reports, never escape."""
    task_name = request["task"]
    try:
        task = app.tasks.get(task_name)
        ctx = JobContext(
            request["job_id"],
            task_name,
            request["attempt"],
            lambda _j, _a, v: send({"progress": v}),
            parent_results=parent_results(request.get("parents", ())),
            spawner=None if replies is None else PipeSpawner(send, replies),
        )
        args, kwargs = task.call_args(task.load_payload(request["payload"]), ctx)
        _running.append(ctx)
        try:
            value = task.fn(*args, **kwargs)
            if asyncio.iscoroutine(value):
                # One loop for the child's life: what a task caches on it survives between jobs.
                value = loop.run_until_complete(value)
        finally:
            _running.clear()
        send({"ok": True, "result": task.dump_result(value)})
    except RetryLater as exc:
        send({"ok": False, "kind": "retry_later", "delay": exc.delay, "error": str(exc)})
    except PermanentFailure as exc:
        send({"ok": False, "kind": "permanent", "error": str(exc)})
    except Exception as exc:
        send(
            {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        )


def main(argv: list[str]) -> int:
    (app_ref,) = argv
    exit_with_parent()
    signal.signal(signal.SIGUSR1, _asked_to_stop)
    install_log_redaction()  # what the task logs reaches the worker's log: no passwords in it
    # The worker's pipes move to private descriptors: what a task (or a program it starts)
    # prints goes to stderr, and what it reads is /dev/null, never the next job's request.
    report_stream: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    requests: IO[str] = os.fdopen(os.dup(0), "r")
    os.dup2(2, 1)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        report_stream.write(json.dumps(message) + "\n")
        report_stream.flush()

    try:
        app: App | None = load_app(app_ref)
        load_error = ""
    except Exception as exc:  # reported to every job sent here, where the user sees it
        app, load_error = None, f"cannot load {app_ref}: {type(exc).__name__}: {exc}"
    loop = asyncio.new_event_loop()
    for line in requests:
        request = json.loads(line)
        if app is None:
            send({"ok": False, "error": load_error, "traceback": ""})
        else:
            run_one(app, request, loop, send, requests)
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
