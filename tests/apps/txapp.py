"""The App the transaction tests run: tasks that write a row of their own (table ``effects``,
in the store's own database) inside ``ctx.transaction()``, so a test can count, per job, the
effects that were committed.

``effects`` has no key on ``job_id`` on purpose: an effect committed twice shows as two rows.
Gate files (``TXAPP_GATES``, a folder) let a test hold a run before its transaction.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel

from jobhandler import App, JobContext, LeaseLost
from jobhandler.model.retry import RetryPolicy

app = App()

FAST_RETRY = RetryPolicy(base=0.1, factor=1.0, max_delay=0.1, jitter=0.0)
EFFECTS = (
    "CREATE TABLE IF NOT EXISTS effects (job_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
    " pid INTEGER NOT NULL)"
)


class Effect(BaseModel):
    hold: float = 0.0  # seconds inside the transaction, after the insert
    fail_attempts: int = 0  # the first this many attempts raise inside it, after the insert


def _insert(conn: Any, ctx: JobContext) -> None:
    values = (ctx.job_id, ctx.attempt, os.getpid())
    if isinstance(conn, sqlite3.Connection):
        conn.execute("INSERT INTO effects (job_id, attempt, pid) VALUES (?, ?, ?)", values)
    else:
        conn.execute("INSERT INTO effects (job_id, attempt, pid) VALUES (%s, %s, %s)", values)


async def _insert_async(conn: Any, ctx: JobContext) -> None:
    if isinstance(conn, psycopg.AsyncConnection):
        values = (ctx.job_id, ctx.attempt, os.getpid())
        await conn.execute("INSERT INTO effects (job_id, attempt, pid) VALUES (%s, %s, %s)", values)
    else:
        _insert(conn, ctx)


@app.task(max_attempts=10, retry=FAST_RETRY)
async def effect(payload: Effect, ctx: JobContext) -> dict[str, int]:
    """One row, committed with the job's completion."""
    async with ctx.transaction() as conn:
        await _insert_async(conn, ctx)
        if payload.hold:
            await asyncio.sleep(payload.hold)
        if ctx.attempt <= payload.fail_attempts:
            raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
        ctx.set_result({"attempt": ctx.attempt})
    return {"ignored": 1}  # the job completed at the commit, with the result set above


@app.task(max_attempts=10, retry=FAST_RETRY)
def effect_sync(payload: Effect, ctx: JobContext) -> dict[str, int]:
    """``effect`` for a thread task."""
    with ctx.transaction_sync(result={"attempt": ctx.attempt}) as conn:
        _insert(conn, ctx)
        if payload.hold:
            time.sleep(payload.hold)
        if ctx.attempt <= payload.fail_attempts:
            raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
    return {"attempt": ctx.attempt}


@app.task(max_attempts=1)
async def gated(payload: None, ctx: JobContext) -> None:
    """Says it started, waits for its gate, then writes its row in a transaction; a LeaseLost
    is written down before it is raised."""
    gates = Path(os.environ["TXAPP_GATES"])
    (gates / f"{ctx.job_id}.started").touch()
    deadline = time.monotonic() + 60
    # A file another process writes: there is no event to wait on.
    while not (gates / f"{ctx.job_id}.go").exists() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    try:
        async with ctx.transaction() as conn:
            await _insert_async(conn, ctx)
    except LeaseLost as exc:
        (gates / f"{ctx.job_id}.lost").write_text(str(exc))
        raise


@app.task()
async def plain(payload: None) -> None:
    """Enqueued inside a caller's transaction: does nothing."""


@app.task(isolation="process")
def in_process(payload: None, ctx: JobContext) -> str:
    """ctx.transaction_sync() refuses in a child process; the run reports why."""
    try:
        with ctx.transaction_sync():
            return "unexpected"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
