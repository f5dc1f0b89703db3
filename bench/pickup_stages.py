"""Where a paced job's pickup goes: submit, wake-up, claim, start, split per job.

    .venv/bin/python bench/pickup_stages.py                       # SQLite FULL and PostgreSQL
    .venv/bin/python bench/pickup_stages.py --backends postgres --jobs 300 --workers 2
    JOBHANDLER_SQLITE_SYNCHRONOUS=NORMAL .venv/bin/python bench/pickup_stages.py --backends sqlite

The pickup workload of bench/run.py (jobs submitted one at a time at 100/s by another process
to idle, warm workers; latency = the body's start minus the moment before the submit call),
with the worker processes instrumented from outside the package: each records, on the shared
monotonic clock, when the store's wake-up reached it, when each claim began and returned (and
which jobs it brought) and when each body started. Per job the stages are

- submit: the submit call, until it returned to the submitter;
- wake: from the submit's return to the first wake-up the claiming worker heard after the
  submit began (negative when the wake-up arrived before the submitter had its answer);
- to claim: from that wake-up to the start of the claim that took the job;
- claim: the claim's own round trip;
- start: from the claim's return to the body's first line.

It prints the median of each stage and of the whole, per store. Workers: ``--workers``
processes of ``jobhandler.Worker`` with the default settings, as ``jobhandler worker`` runs.

``--bare`` measures instead the floor under the same pacing, with no job system: one process
inserts a one-row job and signals (PostgreSQL: a trigger's NOTIFY; SQLite: a datagram), another
waits for the signal and claims it with one ``UPDATE ... RETURNING``; and the round trip of a
``SELECT 1`` paced and back to back (the cost of waking an idle database backend and an idle
client on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infra import backend
from jobhandler import App, Settings
from jobhandler.worker import Worker

app = App()
_events: list[tuple[Any, ...]] = []


@app.task
async def mark(i: int) -> None:
    _events.append(("start", time.monotonic(), i))


def _settings(url: str) -> Settings:
    level = os.environ.get("JOBHANDLER_SQLITE_SYNCHRONOUS", "FULL")
    return Settings.model_validate(
        {"database_url": url, "app": "bench.pickup_stages:app", "sqlite_synchronous": level}
    )


def _instrument(store: Any) -> None:
    """Record wake-ups and claims as the worker sees them (wrapping, not changing, the store)."""
    listen, claim = store.listen, store.claim_jobs

    async def listen_recorded(on_submit: Any, on_cancel: Any) -> Any:
        def heard() -> None:
            _events.append(("wake", time.monotonic()))
            on_submit()

        return await listen(heard, on_cancel)

    async def claim_recorded(*args: Any) -> Any:
        began = time.monotonic()
        jobs = await claim(*args)
        ids = [j.payload for j in jobs]
        _events.append(("claim", began, time.monotonic(), ids))
        return jobs

    store.listen, store.claim_jobs = listen_recorded, claim_recorded


def work(url: str, out: Path, ready: Path) -> None:
    """One worker process: run until SIGTERM, then write what it recorded to ``out``."""
    asyncio.run(_work(url, ready))
    out.write_text(json.dumps(_events))


async def _work(url: str, ready: Path) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with app.connected(_settings(url)):
        _instrument(app.service.store)
        worker = Worker(app, _settings(url))
        running = asyncio.create_task(worker.run())
        await asyncio.to_thread(ready.touch)
        await stop.wait()
        worker.stop()
        await running


async def submit(url: str, n: int, rate: float) -> list[tuple[int, float, float]]:
    times: list[tuple[int, float, float]] = []
    async with app.connected(_settings(url)):
        for i in range(-5, 0):  # warm-up: the workers' first claims and starts
            await mark.enqueue(i)
        await asyncio.sleep(2.0)
        due = time.monotonic()
        for i in range(n):
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            began = time.monotonic()
            await mark.enqueue(i)
            times.append((i, began, time.monotonic()))
    return times


def split(submits: list[tuple[int, float, float]], events: list[list[Any]]) -> dict[str, float]:
    starts = {e[2]: e[1] for e in events if e[0] == "start"}
    stages: dict[str, list[float]] = {}
    for i, began, acked in submits:
        claim = next(e for e in events if e[0] == "claim" and i in e[3])
        wakes = [e[1] for e in events if e[0] == "wake" and e[-1] == claim[-1] and e[1] >= began]
        woke = min(wakes, default=claim[1])
        row = {
            "submit": acked - began,
            "wake": woke - acked,
            "to claim": claim[1] - woke,
            "claim": claim[2] - claim[1],
            "start": starts[i] - claim[2],
            "pickup": starts[i] - began,
        }
        for name, value in row.items():
            stages.setdefault(name, []).append(value * 1000)
    return {name: round(statistics.median(v), 3) for name, v in stages.items()}


def measure(kind: str, n: int, rate: float, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, backend(kind, "stages", Path(tmp)) as url:
        asyncio.run(_migrate(url))
        procs, outs, readies = [], [], []
        for w in range(workers):
            out, ready = Path(tmp) / f"w{w}.json", Path(tmp) / f"w{w}.ready"
            cmd = [sys.executable, __file__, "--work", url, str(out), str(ready)]
            procs.append(subprocess.Popen(cmd))
            outs.append(out)
            readies.append(ready)
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in readies):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start")
            time.sleep(0.05)
        submits = asyncio.run(submit(url, n, rate))
        time.sleep(1.0)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        events: list[list[Any]] = []
        for w, out in enumerate(outs):
            events += [[*e, w] for e in json.loads(out.read_text())]
        return split(submits, events)


BARE_CLAIM = (
    "UPDATE t SET status = 'running' WHERE id = (SELECT id FROM t WHERE status = 'queued'"
    " ORDER BY id LIMIT 1{lock}) RETURNING id"
)


def bare(kind: str, n: int, rate: float) -> dict[str, float]:
    """The floor: a one-row insert and its signal, heard by another process that claims it."""
    with tempfile.TemporaryDirectory() as tmp, backend(kind, "stages_bare", Path(tmp)) as url:
        out, ready = Path(tmp) / "bare.json", Path(tmp) / "bare.ready"
        if kind == "postgres":
            asyncio.run(_bare_pg_schema(url))
        cmd = [sys.executable, __file__, "--bare-claimer", url, str(out), str(ready)]
        claimer = subprocess.Popen(cmd)
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline:
                raise SystemExit("the bare claimer did not start")
            time.sleep(0.05)
        if kind == "postgres":
            submits = asyncio.run(_bare_submit_pg(url, n, rate))
        else:
            submits = _bare_submit_sqlite(url, n, rate, Path(tmp))
        claimer.wait(60)
        claims = {e[0]: e for e in json.loads(out.read_text()) if e[0] is not None}
        trips = asyncio.run(_round_trips(url, rate)) if kind == "postgres" else {}
    rows = [(claims[i], began, acked) for i, began, acked in submits if i in claims]
    row = {
        "insert": statistics.median(a - b for _, b, a in rows),
        "wake": statistics.median(c[1] - a for c, _, a in rows),
        "claim": statistics.median(c[2] - c[1] for c, _, _ in rows),
        "to claimed": statistics.median(c[2] - b for c, b, _ in rows),
        **trips,
    }
    return {k: round(v * 1000, 3) for k, v in row.items()}


async def _bare_pg_schema(url: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, status text, payload jsonb)")
        await conn.execute(
            "CREATE FUNCTION t_notify() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_notify('t', ''); RETURN NEW; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER t_notify AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION t_notify()"
        )


def _sqlite_conn(url: str) -> Any:
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    level = os.environ.get("JOBHANDLER_SQLITE_SYNCHRONOUS", "FULL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {level}")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _bare_submit_sqlite(
    url: str, n: int, rate: float, folder: Path
) -> list[tuple[int, float, float]]:
    """Paced inserts, one row each, each followed by a datagram; then a stop. Ids 1..n."""
    import socket

    times: list[tuple[int, float, float]] = []
    conn, sock = _sqlite_conn(url), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    due = time.monotonic()
    for i in range(1, n + 1):
        due += 1 / rate
        time.sleep(max(0.0, due - time.monotonic()))
        began = time.monotonic()
        conn.execute("INSERT INTO t (status, payload) VALUES ('queued', '{}')")
        sock.sendto(b"x", str(folder / "bare.sock"))
        times.append((i, began, time.monotonic()))
    time.sleep(0.5)
    sock.sendto(b"stop", str(folder / "bare.sock"))
    return times


async def _bare_submit_pg(url: str, n: int, rate: float) -> list[tuple[int, float, float]]:
    """Paced inserts, one row each (the trigger notifies); then a stop. Ids 1..n."""
    import psycopg

    times: list[tuple[int, float, float]] = []
    due = time.monotonic()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for i in range(1, n + 1):
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            began = time.monotonic()
            await conn.execute("INSERT INTO t (status, payload) VALUES ('queued', '{}')")
            times.append((i, began, time.monotonic()))
        await asyncio.sleep(0.5)
        await conn.execute("NOTIFY t, 'stop'")
    return times


def bare_claimer(url: str, out: Path, ready: Path) -> None:
    claims: list[tuple[Any, float, float]] = []
    if url.startswith("sqlite:///"):
        import socket

        conn = _sqlite_conn(url)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT, payload TEXT)")
        conn.execute("CREATE INDEX t_due ON t (status, id)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(out.parent / "bare.sock"))
        ready.touch()
        while sock.recv(16) != b"stop":
            woke = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(BARE_CLAIM.format(lock="")).fetchone()
            conn.execute("COMMIT")
            claims.append((row[0] if row else None, woke, time.monotonic()))
    else:
        claims = asyncio.run(_bare_pg_claimer(url, ready))
    out.write_text(json.dumps(claims))


async def _bare_pg_claimer(url: str, ready: Path) -> list[tuple[Any, float, float]]:
    import psycopg

    claims: list[tuple[Any, float, float]] = []
    claim = BARE_CLAIM.format(lock=" FOR UPDATE SKIP LOCKED")
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as listener,
    ):
        await conn.execute("SET synchronous_commit = off")  # as our claims commit
        await listener.execute("LISTEN t")
        await asyncio.to_thread(ready.touch)
        async for note in listener.notifies():
            if note.payload == "stop":
                break
            woke = time.monotonic()
            row = await (await conn.execute(claim)).fetchone()
            claims.append((row[0] if row else None, woke, time.monotonic()))
    return claims


async def _round_trips(url: str, rate: float) -> dict[str, float]:
    """``SELECT 1``: paced at ``rate`` (idle between) and back to back."""
    import psycopg

    found: dict[str, float] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for name, pause in (("round trip, paced", 1 / rate), ("round trip, back to back", 0)):
            times = []
            for _ in range(300):
                await asyncio.sleep(pause)
                began = time.monotonic()
                await conn.execute("SELECT 1")
                times.append(time.monotonic() - began)
            found[name] = statistics.median(times)
    return found


async def _migrate(url: str) -> None:
    async with app.connected(_settings(url)):
        pass


def main() -> None:
    if sys.argv[1:2] == ["--work"]:
        work(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    if sys.argv[1:2] == ["--bare-claimer"]:
        bare_claimer(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bare", action="store_true", help="the floor, with no job system")
    args = parser.parse_args()
    for kind in args.backends.split(","):
        if args.bare:
            row = bare(kind, args.jobs, args.rate)
        else:
            row = measure(kind, args.jobs, args.rate, args.workers)
        print(kind, "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
