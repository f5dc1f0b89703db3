"""``jobhandler serve`` and ``jobhandler worker``: the long-running processes."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from jobhandler.cli.options import build_settings, setting_options
from jobhandler.process.entry import load, run_process
from jobhandler.process.supervisor import supervise
from jobhandler.settings import PREFIX


@click.command()
@setting_options("store", "worker", "serve")
@click.option(
    "--no-worker",
    envvar=PREFIX + "NO_WORKER",
    show_envvar=True,
    is_flag=True,
    help="Serve the API only.",
)
def serve(no_worker: bool, **settings: Any) -> None:
    """Serve the HTTP API, with a worker in the same process unless --no-worker."""
    run_process(build_settings(settings), http=True, worker=not no_worker)


@click.command()
@setting_options("store", "worker")
@click.option(
    "--processes",
    envvar=PREFIX + "PROCESSES",
    show_envvar=True,
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes, kept running by a supervisor.",
)
def worker(processes: int, **options: Any) -> None:
    """Run a worker: claim and run jobs until SIGTERM (a second signal exits at once)."""
    settings = build_settings(options)
    if processes == 1:
        run_process(settings, http=False, worker=True)
        return
    load(settings)  # fail here, once, if the app cannot be imported
    sys.exit(asyncio.run(supervise(settings, processes)))


COMMANDS = (serve, worker)
