"""The App the crash tests run: tasks that leave an exact trace in a ledger, run long, or kill.

The ledger is a SQLite file of its own (``CRASHAPP_LEDGER``), shared by every worker process of
a test. Each run of a task bumps its job's row (``job_id`` is the primary key), so the test can
count exactly how often each job ran: 0 means lost, more than 1 a duplicate. Writes take the lock
up front (``BEGIN IMMEDIATE``) and wait for it (busy timeout), as several processes share the file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass

from pydantic import BaseModel

from jobhandler import App, JobContext
from jobhandler.model.retry import RetryPolicy

app = App()

# Retries (and rescues) come back almost at once, so a test waits on leases, not on backoff.
FAST_RETRY = RetryPolicy(base=0.1, factor=1.0, max_delay=0.1, jitter=0.0)

_local = threading.local()


def _ledger_path() -> str:
    return os.environ["CRASHAPP_LEDGER"]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL survives a process kill
    return conn


def _conn() -> sqlite3.Connection:
    """One connection per thread and process (a run may be in a thread or a child process)."""
    path, pid = _ledger_path(), os.getpid()
    cached = getattr(_local, "conn", None)
    if cached is None or _local.key != (path, pid):
        cached = _connect(path)
        _local.conn, _local.key = cached, (path, pid)
    return cached


def _write(sql: str, params: tuple[object, ...]) -> None:
    conn = _conn()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(sql, params)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def init_ledger(path: str) -> None:
    """Create the ledger file (WAL) before any worker writes to it."""
    conn = _connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS runs (job_id TEXT PRIMARY KEY, runs INTEGER NOT NULL,"
            " attempts TEXT NOT NULL, pids TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (job_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
            " event TEXT NOT NULL, at REAL NOT NULL)"
        )
    finally:
        conn.close()


def record_run(ctx: JobContext) -> None:
    """Count one run of the job; the primary key makes a second run bump the same row."""
    _write(
        "INSERT INTO runs (job_id, runs, attempts, pids) VALUES (?, 1, ?, ?)"
        " ON CONFLICT (job_id) DO UPDATE SET runs = runs + 1,"
        " attempts = attempts || ',' || excluded.attempts, pids = pids || ',' || excluded.pids",
        (ctx.job_id, str(ctx.attempt), str(os.getpid())),
    )


def record_event(ctx: JobContext, event: str) -> None:
    _write(
        "INSERT INTO events (job_id, attempt, event, at) VALUES (?, ?, ?, ?)",
        (ctx.job_id, ctx.attempt, event, time.time()),
    )


@dataclass(frozen=True)
class Run:
    runs: int
    attempts: list[int]
    pids: list[int]


def read_runs(path: str) -> dict[str, Run]:
    conn = _connect(path)
    try:
        rows = conn.execute("SELECT job_id, runs, attempts, pids FROM runs").fetchall()
    finally:
        conn.close()
    return {
        job_id: Run(runs, [int(a) for a in attempts.split(",")], [int(p) for p in pids.split(",")])
        for job_id, runs, attempts, pids in rows
    }


def read_events(path: str) -> list[tuple[str, int, str]]:
    conn = _connect(path)
    try:
        rows = conn.execute("SELECT job_id, attempt, event FROM events ORDER BY at").fetchall()
    finally:
        conn.close()
    return [(job_id, attempt, event) for job_id, attempt, event in rows]


# -- a trace of starts and ends, one append-only file per process ---------------------------
#
# For runs many at a time (test_crash_repeats.py): the ledger above takes a lock shared by every
# worker, and a worker's event loop waits on it; an append to a file of its own waits on nobody.
# A killed process keeps what it wrote (the page cache outlives it), so after a kill -9 the file
# says which runs of the dead worker had ended and which were still going.


def _trace_fd() -> int:
    pid = os.getpid()
    if getattr(_local, "trace_pid", None) != pid:
        path = f"{_ledger_path()}.trace.{pid}"
        _local.trace_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _local.trace_pid = pid
    fd: int = _local.trace_fd
    return fd


def trace(ctx: JobContext, event: str) -> None:
    os.write(_trace_fd(), f"{event} {ctx.job_id} {ctx.attempt}\n".encode())


@dataclass
class Trace:
    """What one process's runs did: jobs whose run started, and jobs whose run ended."""

    started: list[str]
    ended: set[str]


def read_traces(ledger_path: str) -> dict[int, Trace]:
    """Every process's trace, by pid."""
    found: dict[int, Trace] = {}
    folder, name = os.path.split(ledger_path)
    for entry in os.listdir(folder or "."):
        if not entry.startswith(f"{name}.trace."):
            continue
        with open(os.path.join(folder, entry)) as lines:
            events = [line.split() for line in lines if line.endswith("\n")]
        found[int(entry.rsplit(".", 1)[1])] = Trace(
            [job for event, job, _ in events if event == "start"],
            {job for event, job, _ in events if event == "end"},
        )
    return found


# -- tasks -----------------------------------------------------------------------------------


class Hold(BaseModel):
    hold: float = 0.0  # seconds the first attempt takes
    retry_hold: float | None = None  # seconds later attempts take (default: ``hold``)


@app.task(retry=FAST_RETRY)
async def ledger(payload: Hold, ctx: JobContext) -> dict[str, int]:
    """Record the run, hold (cancellable), and say which attempt in which process did it."""
    record_run(ctx)
    hold = payload.hold if ctx.attempt == 1 or payload.retry_hold is None else payload.retry_hold
    if hold > 0:
        await asyncio.sleep(hold)
    return {"attempt": ctx.attempt, "pid": os.getpid()}


@app.task(retry=FAST_RETRY)
async def tick(payload: Hold, ctx: JobContext) -> None:
    """Trace the start, hold, trace the end: nothing that waits on another process."""
    trace(ctx, "start")
    if payload.hold > 0:
        await asyncio.sleep(payload.hold)
    trace(ctx, "end")


@app.task(retry=FAST_RETRY)
def slow_thread(payload: Hold, ctx: JobContext) -> str:
    """A plain function in a thread: holds its time unless ``ctx.cancelled`` is set."""
    record_run(ctx)
    hold = payload.hold if ctx.attempt == 1 or payload.retry_hold is None else payload.retry_hold
    if ctx.wait_cancelled(hold):
        record_event(ctx, "saw-cancel")
        return "stopped"
    return "done"


@app.task(isolation="process", retry=FAST_RETRY)
def crunch(payload: float, ctx: JobContext) -> int:
    """CPU-bound work in a child process for ``payload`` seconds: only a signal stops it."""
    record_run(ctx)
    deadline = time.monotonic() + payload
    loops = 0
    while time.monotonic() < deadline:
        loops += 1
    return loops


@app.task(max_attempts=3, retry=FAST_RETRY)
async def poison(ctx: JobContext) -> None:
    """Kills the worker process that runs it, every time (a segfault, an OOM kill...)."""
    record_run(ctx)
    os.kill(os.getpid(), signal.SIGKILL)
