"""The App the secrets tests run: tasks that show what task code can see, and fail or log with
whatever text the test hands them (a store URL with its password, NUL, a lone surrogate)."""

from __future__ import annotations

import logging
import os

from jobhandler import App, PermanentFailure

app = App()
log = logging.getLogger("secretsapp")


@app.task
async def environ(_: None) -> dict[str, str]:
    """The whole environment, as task code in a worker process sees it."""
    return dict(os.environ)


@app.task(isolation="process")
def environ_in_child(_: None) -> dict[str, str]:
    """The same from a child process of the worker (isolation="process")."""
    return dict(os.environ)


@app.task(max_attempts=1)
async def fail_with(message: str) -> None:
    """Fails with ``message`` in its error and its traceback."""
    raise RuntimeError(message)


@app.task(max_attempts=1, isolation="process")
def fail_with_in_child(message: str) -> None:
    raise RuntimeError(message)


@app.task(max_attempts=1)
async def fail_unstorable(kind: str) -> None:
    """Fails with text no store can hold as it is: NUL (PostgreSQL) or a lone surrogate."""
    raise ValueError({"nul": "bad\x00byte", "surrogate": "bad\ud800half"}[kind])


@app.task(max_attempts=1)
async def fail_unstorable_permanently(kind: str) -> None:
    raise PermanentFailure({"nul": "bad\x00byte", "surrogate": "bad\ud800half"}[kind])


@app.task
async def ok(value: int) -> int:
    return value


@app.task
async def log_it(message: str) -> str:
    """Logs ``message``, plain and in an exception's traceback, as task code might."""
    log.warning("connecting to %s", message)
    try:
        raise ConnectionError(f"could not reach {message}")
    except ConnectionError:
        log.exception("giving up")
    return "logged"


@app.task(isolation="process")
def log_it_in_child(message: str) -> str:
    """The same from a child process, which has no logging set up of its own."""
    log.warning("connecting to %s", message)
    try:
        raise ConnectionError(f"could not reach {message}")
    except ConnectionError:
        log.exception("giving up")
    return "logged"


def _environment_blocks() -> dict[str, str]:
    """What the kernel and a program started from here show of the environment: the block this
    process was exec'd with, its parent's, and what ``env`` prints in a subprocess."""
    import subprocess
    from pathlib import Path

    def block(pid: int | str) -> str:  # NUL-separated: one variable a line, as env prints them
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()

    return {
        "self": block("self"),
        "parent": block(os.getppid()),
        "env": subprocess.run(["env"], capture_output=True, text=True, check=True).stdout,
    }


@app.task(max_attempts=1)
async def environment_blocks(_: None) -> dict[str, str]:
    """The environment blocks, as task code in a worker process reads them."""
    return _environment_blocks()


@app.task(max_attempts=1, isolation="process")
def environment_blocks_in_child(_: None) -> dict[str, str]:
    """The same from a child process of the worker (isolation="process"): its parent is the
    worker."""
    return _environment_blocks()
