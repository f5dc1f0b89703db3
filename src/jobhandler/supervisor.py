"""``jobhandler worker --processes N``: N worker processes under one supervisor.

The supervisor runs no jobs itself. It starts N children (``python -m jobhandler.supervisor``,
handed the Settings as JSON), restarts any that dies, and on SIGTERM or SIGINT passes the signal
on and waits for them to drain; a second signal is passed on too, so they exit at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from jobhandler.metrics import for_slot
from jobhandler.process import configure_logging, run_process
from jobhandler.settings import SETTINGS_JSON_VARIABLE, Settings, scrub_environment

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
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jobhandler.supervisor",
                # Each slot its own metrics port: P, P+1, ... (kept across restarts).
                env={
                    **os.environ,
                    SETTINGS_JSON_VARIABLE: for_slot(settings, slot).model_dump_json(),
                },
            )
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


def child_main() -> None:
    """One supervised worker process: the Settings come from the supervisor as JSON."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_JSON_VARIABLE])
    scrub_environment()
    configure_logging(settings)
    run_process(settings, http=False, worker=True)


if __name__ == "__main__":
    child_main()
