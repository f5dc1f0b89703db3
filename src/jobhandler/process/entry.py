"""What every ``jobhandler`` process does around its work: logging, loading the App, exit codes.

The CLI and the supervisor's child processes both start here, so neither imports the other.

Exit codes: 0 success; 1 the job failed or was cancelled (``submit --wait``), or a forced stop;
2 bad usage or input (the server answered 4xx; ``serve`` on a port in use); 3 the server or its
store could not be reached
(or answered 5xx); 4 ``submit --wait`` gave up before the job finished.

Secrets reach a process through a pipe, never its environment: see ``handover.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import traceback
from typing import NoReturn

import click

from jobhandler.app import App, load_app
from jobhandler.model.errors import StoreUnavailable
from jobhandler.observe import logs
from jobhandler.settings import Settings

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
    except ValueError as exc:  # not module:attribute, or not an App
        fail(f"cannot load the app {settings.app!r}: {exc}")
    except ModuleNotFoundError as exc:
        if exc.name and settings.app.partition(":")[0].startswith(exc.name):
            fail(f"cannot load the app {settings.app!r}: no module named {exc.name!r}")
        fail(f"cannot load the app {settings.app!r}: {_raised(exc)}")
    except Exception as exc:  # the user's module raised as it was imported
        fail(f"cannot load the app {settings.app!r}: {_raised(exc)}")


def _raised(exc: BaseException) -> str:
    """The exception as one line, with the file and line of the user's code that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    # The user's frames: not ours, not the standard library's, not frozen ("<frozen os>").
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the jobhandler package
    skip = (ours, sysconfig.get_paths()["stdlib"], "<")
    theirs = [f for f in frames if not f.filename.startswith(skip)]
    message = " ".join(str(exc).split()) or "(no message)"
    where = f" ({theirs[-1].filename}:{theirs[-1].lineno})" if theirs else ""
    if isinstance(exc, SyntaxError) and exc.filename:  # raised by the compiler, not a frame
        where = f" ({exc.filename}:{exc.lineno})"
        message = exc.msg
    return f"{type(exc).__name__}: {message}{where}"


def run_process(settings: Settings, *, http: bool, worker: bool) -> None:
    """Serve and/or work until stopped; a reason it cannot start is one line and an exit code."""
    # Imported here: the server and the worker are more to load than a client command needs.
    from jobhandler.process.runtime import CannotListen, PublicBindRefused, run

    app = load(settings)
    try:
        asyncio.run(run(app, settings, http=http, worker=worker))
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except (PublicBindRefused, CannotListen) as exc:  # no token to guard it; a port in use
        fail(str(exc))
