"""The App the tenant tests run (tests/acceptance/test_tenants.py): every run writes its
tenant and when it started and ended to a ledger (one file per worker process in
``TENANTAPP_LEDGER``), so a test can replay how many of a key ran at once, over every worker,
and in which order the tenants started."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from pydantic import BaseModel

from jobhandler import App

app = App()
app.queue("tenants", key_concurrency=2)  # per key, over all workers: the store counts


class Work(BaseModel):
    tenant: str
    seconds: float


def _record(queue: str, work: Work, started: float, ended: float) -> None:
    ledger = Path(os.environ["TENANTAPP_LEDGER"]) / f"{os.getpid()}.txt"
    with ledger.open("a") as out:  # one writer per file: this process's event loop
        out.write(f"{queue} {work.tenant} {started!r} {ended!r}\n")


@app.task(queue="tenants")
async def limited(work: Work) -> None:
    started = time.time()
    await asyncio.sleep(work.seconds)
    _record("tenants", work, started, time.time())


@app.task(queue="fair")
async def shared(work: Work) -> None:
    started = time.time()
    await asyncio.sleep(work.seconds)
    _record("fair", work, started, time.time())


def runs(ledger: str, queue: str) -> list[tuple[str, float, float]]:
    """Every recorded run of ``queue``: (tenant, started, ended), by start."""
    found = []
    for path in Path(ledger).glob("*.txt"):
        for line in path.read_text().splitlines():
            name, tenant, started, ended = line.split()
            if name == queue:
                found.append((tenant, float(started), float(ended)))
    return sorted(found, key=lambda run: run[1])
