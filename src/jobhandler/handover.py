"""Secrets handed to a process through a pipe, never through its environment block.

``os.environ.pop`` is not enough: the kernel shows the environment a process was exec'd with
(``/proc/<pid>/environ``) to the process and to its children, which read their parent's. So a
``jobhandler`` command that finds a secret variable execs itself once more without it (same
interpreter, arguments, working directory and pid, so exit codes and signals are unchanged),
handing the values over through an inherited pipe named by ``JOBHANDLER_SECRETS_FD``; the
supervisor hands its children their settings the same way.

This module imports nothing of the package: the command line enters at ``jobhandler.__main__``,
which restarts through here before the CLI, the App or pydantic are loaded.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping

PREFIX = "JOBHANDLER_"
DATABASE_URL_VARIABLE = PREFIX + "DATABASE_URL"
TOKEN_VARIABLE = PREFIX + "TOKEN"  # the API token client commands send
SETTINGS_JSON_VARIABLE = PREFIX + "SETTINGS_JSON"  # a supervisor's Settings, for its children
SECRET_VARIABLES = (DATABASE_URL_VARIABLE, TOKEN_VARIABLE, SETTINGS_JSON_VARIABLE)
SECRETS_FD_VARIABLE = PREFIX + "SECRETS_FD"  # names the pipe they come through instead
EXIT_USAGE = 2  # as jobhandler.process.entry's


def environment_without_secrets() -> dict[str, str]:
    """``os.environ`` less the secrets: the environment to give a program this one starts."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}


def scrub_environment() -> None:
    """Drop the secrets from ``os.environ`` once the settings have read them."""
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)


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
        # sys.orig_argv: the interpreter's own options too (-m, -X, -u), as they were given;
        # bandit's B606 warns of starting a process: this is the very command, started again.
        os.execve(sys.executable, sys.orig_argv, env)  # nosec B606
    except OSError as exc:
        os.close(read_end)
        print(
            f"warning: could not restart without secrets in the environment: {exc}", file=sys.stderr
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
        print(
            f"error: {SECRETS_FD_VARIABLE}={named}: cannot read the secrets: {exc}", file=sys.stderr
        )
        sys.exit(EXIT_USAGE)
    os.environ.update({k: v for k, v in secrets.items() if k in SECRET_VARIABLES})
    return True
