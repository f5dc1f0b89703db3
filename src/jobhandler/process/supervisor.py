"""``jobhandler worker --processes N``: N worker processes under one supervisor.

The supervisor runs no jobs itself. It starts N children
(``python -m jobhandler.process.supervisor``, handed the Settings as JSON through a pipe, never
their environment: they hold the store URL), restarts any that dies, and on SIGTERM or SIGINT
passes the signal on and waits for them to drain; a second signal is passed on too, so they exit
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from jobhandler.handover import (
    SECRETS_FD_VARIABLE,
    SETTINGS_JSON_VARIABLE,
    environment_without_secrets,
    receive_secrets,
    scrub_environment,
    secrets_pipe,
)
from jobhandler.observe.metrics import for_slot
from jobhandler.process.entry import configure_logging, run_process
from jobhandler.settings import Settings

log = logging.getLogger("jobhandler.supervisor")

RESTART_BACKOFF_MAX = 10.0


async def supervise(settings: Settings, processes: int) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    children: dict[int, asyncio.subprocess.Process] = {}

    def forward(signum: int) -> None:
        if stopping.is_set():
            log.warning("second signal: telling workers to exit now")
        stopping.set()
        for child in children.values():
            if child.returncode is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, forward, signum)

    async def keep_running(slot: int) -> None:
        failures = 0
        while not stopping.is_set():
            started = time.monotonic()
            # Each slot its own metrics port: P, P+1, ... (kept across restarts).
            child = await start_child(for_slot(settings, slot))
            children[slot] = child
            log.info("worker process %d started (pid %d)", slot, child.pid)
            code = await child.wait()
            if stopping.is_set():
                return
            # A child that keeps dying at once is restarted ever more slowly.
            failures = 0 if time.monotonic() - started > RESTART_BACKOFF_MAX else failures + 1
            delay = min(0.1 * 2**failures, RESTART_BACKOFF_MAX)
            log.warning("worker process %d exited with %d; restarting in %.1fs", slot, code, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)

    try:
        await asyncio.gather(*(keep_running(slot) for slot in range(processes)))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


async def start_child(settings: Settings) -> asyncio.subprocess.Process:
    """A worker process, handed ``settings`` through a pipe it inherits."""
    read_end = secrets_pipe({SETTINGS_JSON_VARIABLE: settings.model_dump_json()})
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobhandler.process.supervisor",
            env=environment_without_secrets() | {SECRETS_FD_VARIABLE: str(read_end)},
            pass_fds=(read_end,),
        )
    finally:
        os.close(read_end)


def child_main() -> None:
    """One supervised worker process: the Settings come from the supervisor as JSON."""
    receive_secrets()
    settings = Settings.model_validate_json(os.environ[SETTINGS_JSON_VARIABLE])
    scrub_environment()
    configure_logging(settings)
    run_process(settings, http=False, worker=True)


if __name__ == "__main__":
    child_main()
