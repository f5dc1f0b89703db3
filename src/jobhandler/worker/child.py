"""The child side of the process runner: ``python -m jobhandler.worker.child APP TASK``.

It reads one JSON request on stdin, runs the task and writes JSON lines to what was stdout
(the task's own prints go to stderr, so they cannot garble the report). It dies with the
worker: a result nobody can read is not worth a core.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from typing import IO, Any

from jobhandler.app import load_app
from jobhandler.context import JobContext
from jobhandler.errors import PermanentFailure, RetryLater
from jobhandler.redact import install_log_redaction


def exit_with_parent(interval: float = 0.2) -> None:
    """Exit when the worker that started us is gone (a kill -9 gives us no signal: we only
    notice that we were re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="jobhandler-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    app_ref, task_name = argv
    exit_with_parent()
    install_log_redaction()  # what the task logs reaches the worker's log: no passwords in it
    report_stream: IO[str] = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        report_stream.write(json.dumps(message) + "\n")
        report_stream.flush()

    request = json.loads(sys.stdin.readline())
    try:
        task = load_app(app_ref).tasks.get(task_name)
        ctx = JobContext(
            request["job_id"],
            task_name,
            request["attempt"],
            lambda _j, _a, v: send({"progress": v}),
        )
        args, kwargs = task.call_args(task.load_payload(request["payload"]), ctx)
        value = task.fn(*args, **kwargs)
        if asyncio.iscoroutine(value):
            value = asyncio.run(value)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
