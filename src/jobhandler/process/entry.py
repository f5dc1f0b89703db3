"""What every ``jobhandler`` process does around its work: logging, loading the App, exit codes.

The CLI and the supervisor's child processes both start here, so neither imports the other.

Exit codes: 0 success; 1 the job failed or was cancelled (``submit --wait``), or a forced stop;
2 bad usage or input (the server answered 4xx); 3 the server or its store could not be reached
(or answered 5xx); 4 ``submit --wait`` gave up before the job finished.

Secrets never stay in a process's environment block. ``os.environ.pop`` is not enough: the
kernel shows the environment a process was exec'd with (``/proc/<pid>/environ``) to the process
and to its children, which read their parent's. So a command that finds a secret variable execs
itself once more without it (same interpreter, arguments, working directory and pid, so exit
codes and signals are unchanged), handing the values over through an inherited pipe named by
``JOBHANDLER_SECRETS_FD``; the supervisor hands its children their settings the same way.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Mapping
from typing import NoReturn

import click

from jobhandler.app import App, load_app
from jobhandler.model.errors import StoreUnavailable
from jobhandler.observe import logs
from jobhandler.settings import (
    SECRET_VARIABLES,
    SECRETS_FD_VARIABLE,
    Settings,
    environment_without_secrets,
)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_WAIT_TIMEOUT = 4


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """End the process with one line on stderr."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def configure_logging(settings: Settings) -> None:
    logs.configure(settings)  # text or JSON lines, redacted, with uvicorn's access log


def load(settings: Settings) -> App:
    # Like uvicorn and celery: `--app myapp:app` finds myapp.py in the current directory. The
    # console script, unlike `python -m`, does not put it on the path by itself.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_app(settings.app)
    except (ImportError, ValueError) as exc:
        fail(f"cannot load the app {settings.app!r}: {exc}")


def run_process(settings: Settings, *, http: bool, worker: bool) -> None:
    """Serve and/or work until stopped; a reason it cannot start is one line and an exit code."""
    # Imported here: the server and the worker are more to load than a client command needs.
    from jobhandler.process.runtime import PublicBindRefused, run

    app = load(settings)
    try:
        asyncio.run(run(app, settings, http=http, worker=worker))
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except PublicBindRefused as exc:  # serve on a network address, and no token to guard it
        fail(str(exc))


# -- secrets handed over through a pipe, not the environment ---------------------------------


def secrets_pipe(secrets: Mapping[str, str]) -> int:
    """The read end of a pipe that holds ``secrets`` (its write end is closed): a descriptor
    for the next program to inherit and read once with ``receive_secrets``."""
    read_end, write_end = os.pipe()
    data = json.dumps(dict(secrets)).encode()
    os.set_blocking(write_end, False)  # a pipe holds 64 KiB: past that, fail rather than hang
    try:
        while data:
            data = data[os.write(write_end, data) :]
    finally:
        os.close(write_end)
    return read_end


def restart_without_secrets() -> None:
    """Exec this command again with its secret variables in a pipe instead of its environment.

    Returns only when there is nothing to hide, or the exec failed (then the secrets stay in the
    environment block, and ``scrub_environment`` still drops them from ``os.environ``).
    """
    secrets = {k: os.environ[k] for k in SECRET_VARIABLES if k in os.environ}
    if not secrets or os.name != "posix":
        return
    read_end = secrets_pipe(secrets)
    env = environment_without_secrets() | {SECRETS_FD_VARIABLE: str(read_end)}
    os.set_inheritable(read_end, True)
    try:
        # sys.orig_argv: the interpreter's own options too (-m, -X, -u), as they were given.
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as exc:
        os.close(read_end)
        click.echo(
            f"warning: could not restart without secrets in the environment: {exc}", err=True
        )


def receive_secrets() -> bool:
    """Put the secrets handed over by ``restart_without_secrets`` or the supervisor back into
    ``os.environ``, where the settings are read from, once (``scrub_environment`` drops them
    again). The environment block never held them. False when nothing was handed over."""
    named = os.environ.pop(SECRETS_FD_VARIABLE, None)
    if named is None:
        return False
    try:
        descriptor = int(named)
        if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):
            raise ValueError("not a pipe")
        with os.fdopen(descriptor, "rb") as pipe:
            secrets = json.loads(pipe.read())
    except (OSError, ValueError) as exc:
        fail(f"{SECRETS_FD_VARIABLE}={named}: cannot read the secrets handed over: {exc}")
    os.environ.update({k: v for k, v in secrets.items() if k in SECRET_VARIABLES})
    return True
