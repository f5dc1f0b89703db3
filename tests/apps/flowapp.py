"""The App the flow-control tests run: every run writes when it started and ended to a ledger
(one file per worker process in ``FLOWAPP_LEDGER``, a directory), so a test can replay exactly
how many ran at once and how fast they started, over every worker process."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from jobhandler import App

app = App()
app.queue("limited", concurrency=2)  # over all workers: the store counts, not a process
app.queue("rated", rate_limit="20/s")


def _record(queue: str, started: float, ended: float) -> None:
    ledger = Path(os.environ["FLOWAPP_LEDGER"]) / f"{os.getpid()}.txt"
    with ledger.open("a") as out:  # one writer per file: this process's event loop
        out.write(f"{queue} {started!r} {ended!r}\n")


@app.task(queue="limited")
async def slow(seconds: float) -> None:
    started = time.time()
    await asyncio.sleep(seconds)
    _record("limited", started, time.time())


@app.task(queue="rated")
async def quick(payload: None = None) -> None:
    now = time.time()
    _record("rated", now, now)


@app.task(queue="pausable")
async def nap(seconds: float) -> None:
    started = time.time()
    await asyncio.sleep(seconds)
    _record("pausable", started, time.time())


def runs(ledger: str, queue: str) -> list[tuple[float, float]]:
    """Every recorded run of ``queue``: (started, ended), by start."""
    found = []
    for path in Path(ledger).glob("*.txt"):
        for line in path.read_text().splitlines():
            name, started, ended = line.split()
            if name == queue:
                found.append((float(started), float(ended)))
    return sorted(found)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at any instant (an end before a start at the same instant)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_, most = 0, 0
    for _, step in events:
        open_ += step
        most = max(most, open_)
    return most
