"""Tasks that show how each runner behaves: process children reused, blocked loops, threads
that outlive their timeout. Used by tests/worker/test_runners_more.py (children import it too)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from jobhandler import App

app = App()


@app.task(isolation="process", max_attempts=1)
def pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.task(isolation="process", max_attempts=1)
def child_exits(_: None) -> None:
    os._exit(3)


@app.task(isolation="process", max_attempts=1)
def noisy(_: None) -> str:
    print("a print")
    subprocess.run(["echo", "a program's output"], check=True)
    return sys.stdin.read()  # nothing: never the next job's request


@app.task(max_attempts=1)
async def blocks_loop(seconds: float) -> str:
    time.sleep(seconds)  # noqa: ASYNC251 (the mistake the watchdog is there to catch)
    return "done"


@app.task(max_attempts=1)
def slow_write(path: str) -> None:
    time.sleep(0.6)
    Path(path).write_text("written late")
