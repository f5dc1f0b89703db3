"""Where one submit's CPU goes: ``enqueue`` split at its layers, in µs of CPU per submit.

    .venv/bin/python bench/submit_parts.py [DATABASE_URL] [--synchronous OFF|NORMAL|FULL]

Each layer of the submit path is wrapped with a CPU clock (``time.thread_time``, the thread's
own CPU, so other processes on a loaded machine do not count), and a layer's part is its time
less the time of the layer it calls. The SQLite store's thread is timed on its own: with
synchronous OFF or NORMAL a one-job submit runs on the loop's thread (store/sqlite/direct.py),
with FULL it goes to the store's thread, and both columns count. Each part's figure is the
median of 5 rounds of 1,000 submits of an int payload. The clock calls add about 1 µs to the
parts that hold a wrapped layer; compare trees by ``bench/submit_cost.py``, which wraps nothing.
Run it on another tree's ``src/`` by putting it first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobhandler import App
from jobhandler.app import Connection
from jobhandler.model.tasks import Task
from jobhandler.service.submits import Submits
from jobhandler.settings import Settings
from jobhandler.store.core import StoreCore
from jobhandler.store.postgres.dialect import PostgresDialect
from jobhandler.store.sqlite import dialect as sqlite
from jobhandler.store.sqlite import direct

app = App()


@app.task
async def noop(i: int) -> None:
    """An int payload, as every system in bench/run.py gets."""


# (owner, method, what it does itself): each layer's time includes the next one's.
LAYERS = [
    (Task, "enqueue", "enqueue: options, payload check, NewJob and its UUIDv7, handle"),
    (Connection, "insert_jobs", "the app's connection to its service"),
    (Submits, "insert", "service: submit hooks, group commit, events, local wake-up"),
    (StoreCore, "insert_jobs", "store: the Job, its parameters, the steps (uniqueness.py)"),
]
SQLITE_LAYERS = [
    (sqlite.SQLiteDialect, "run", "sqlite dialect: path checks, wake-up datagram, the hop"),
    (direct.DirectWriter, "run", "sqlite BEGIN IMMEDIATE and COMMIT, on the loop's thread"),
]
POSTGRES_LAYERS = [
    (PostgresDialect, "run", "postgresql dialect: pool, psycopg, the wait for the server"),
]
STATEMENTS = "sqlite INSERT and count statements, on the loop's thread"
THREAD = "sqlite store's thread: BEGIN, statements, COMMIT (FULL only)"
SPENT: dict[str, float] = defaultdict(float)
LOOP_THREAD = threading.get_ident()


def _async_timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            SPENT[name] += time.thread_time() - start

    return timed


def _timed(name: str, fn: Callable[..., Any], loop_only: bool = False) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        if loop_only and threading.get_ident() != LOOP_THREAD:
            return fn(*args, **kwargs)
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.thread_time() - start

    return timed


def install(postgres: bool) -> list[str]:
    """Wrap the layers; their names, outermost first, then the store thread's."""
    names = []
    for owner, method, name in LAYERS + (POSTGRES_LAYERS if postgres else SQLITE_LAYERS):
        timed = _async_timed if owner is not direct.DirectWriter else _timed
        setattr(owner, method, timed(name, getattr(owner, method)))
        names.append(name)
    if postgres:
        return names
    sqlite.run_steps = _timed(STATEMENTS, sqlite.run_steps, loop_only=True)  # read at init
    work = sqlite.SQLiteDialect._work
    sqlite.SQLiteDialect._work = _timed(THREAD, work)  # type: ignore[method-assign]
    return [*names, STATEMENTS, THREAD]


def exclusive(names: list[str], spent: dict[str, float]) -> dict[str, float]:
    """Each layer less the one it calls; the store thread's time stands alone."""
    chain = [name for name in names if name != THREAD]
    parts = {outer: spent[outer] - spent[inner] for outer, inner in itertools.pairwise(chain)}
    parts[chain[-1]] = spent[chain[-1]]
    if THREAD in names:
        parts[THREAD] = spent[THREAD]
    return parts


async def rounds(url: str, synchronous: str, names: list[str]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = defaultdict(list)
    async with app.connected(Settings(database_url=url, sqlite_synchronous=synchronous)):
        for i in range(300):
            await noop.enqueue(i)  # warm: connections, prepared statements
        for _ in range(5):
            SPENT.clear()
            start = time.thread_time()
            for i in range(1000):
                await noop.enqueue(i)
            total = (time.thread_time() - start) / 1000 * 1e6
            parts = exclusive(names, SPENT)
            for name, seconds in parts.items():
                found[name].append(seconds / 1000 * 1e6)
            found["total, the submitting thread"].append(total)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("database_url", nargs="?", help="default: a SQLite file in /tmp")
    parser.add_argument("--synchronous", default="OFF", choices=["OFF", "NORMAL", "FULL"])
    args = parser.parse_args()
    postgres = bool(args.database_url) and not args.database_url.startswith("sqlite")
    names = install(postgres)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'parts.db'}"
        found = asyncio.run(rounds(url, args.synchronous, names))
    for name, values in found.items():
        print(f"{statistics.median(values):8.1f} µs  {name}")


if __name__ == "__main__":
    main()
