"""CPU per drained job: what our workers, and on PostgreSQL the database's backends serving
them, spend on each job while they drain a full queue.

    .venv/bin/python bench/drain_cost.py                      # SQLite and PostgreSQL, 3 rounds
    .venv/bin/python bench/drain_cost.py --backends postgres --jobs 30000 --rounds 5
    BENCH_SRC=/tmp/old/src .venv/bin/python bench/drain_cost.py   # another copy of src/

The wall-clock drain rate of bench/run.py swings several-fold when other processes share the
cores; CPU time per job moves much less, so this is the figure to compare a change to the
worker or the store's claim and finish by (run it on the old and the new src, interleaved).
Each round fills a fresh store with ``--jobs`` jobs (bulk submit, untimed), starts 2
``python -m jobhandler.cli worker`` processes (bench/adapters/jobhandler_peer.py, as the drain
workload runs them) and reads, between the 10th and the 90th percentile of started jobs, the
workers' CPU time and the wall time; on PostgreSQL also the CPU time of the client backends
connected to the round's database (autovacuum, which comes and goes, is left out). CPU times
are read from /proc, so this runs on Linux with the database on this host. It prints the
median and the best of the rounds, and one JSON line.

Standard library only, like bench/run.py, whose store and process helpers (bench/infra.py) it
uses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.errors import BenchError
from bench.infra import ADAPTER, backend, clean_env, psql, run, spawn, stop
from bench.records import Records

TICK = os.sysconf("SC_CLK_TCK")
WORKERS = 2


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def client_backends(url: str) -> list[int]:
    """The PostgreSQL backends serving this round's database (not autovacuum's)."""
    name = url.rsplit("/", 1)[1]
    out = psql(
        "SELECT pid FROM pg_stat_activity"
        f" WHERE datname = '{name}' AND backend_type = 'client backend'"
    )
    return [int(pid) for pid in out.split()]


def wait_started(
    records: Records, count: int, procs: list[Any], logs: list[Path], deadline: float
) -> None:
    while records.poll() < count:
        if any(p.poll() is not None for p in procs):
            tail = " | ".join(log.read_text(errors="replace")[-300:] for log in logs)
            raise BenchError(f"a worker exited early: {tail}")
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(records.first)}/{count} jobs started in time")
        time.sleep(0.02)


def one_round(kind: str, jobs: int, work: Path, index: int) -> dict[str, float]:
    record = work / f"{kind}-{index}.rec"
    with backend(kind, f"drain_cost_{kind}_{index}", work) as url:
        env = clean_env({"BENCH_BACKEND": kind, "BENCH_DB_URL": url, "BENCH_RECORD": str(record)})
        adapter = [sys.executable, str(ADAPTER), "jobhandler_peer"]
        run([*adapter, "setup"], env=env, timeout=180)
        run([*adapter, "fill", str(jobs)], env=env, timeout=120 + jobs / 20)
        argv = [sys.executable, "-m", "jobhandler.cli", "worker", "--app"]
        argv += ["bench.adapters.jobhandler_peer:app", "--database", url, "--log-level", "warning"]
        logs = [work / f"{kind}-{index}-worker{i}.log" for i in range(WORKERS)]
        procs = [spawn(argv, env, log) for log in logs]
        try:
            records, deadline = Records(record), time.monotonic() + 120 + jobs / 100
            first, last = jobs // 10, jobs * 9 // 10
            wait_started(records, first, procs, logs, deadline)
            pids = [p.pid for p in procs]
            backends = client_backends(url) if kind == "postgres" else []
            wall, mine = time.monotonic(), [cpu_seconds(pid) for pid in pids]
            theirs = {pid: cpu_seconds(pid) for pid in backends}
            wait_started(records, last, procs, logs, deadline)
            wall = time.monotonic() - wall
            mine = [cpu_seconds(pid) - before for pid, before in zip(pids, mine, strict=True)]
            # A pool may open a connection meanwhile: its backend counts from its start.
            backends = client_backends(url) if kind == "postgres" else []
            spent = [cpu_seconds(pid) - theirs.get(pid, 0.0) for pid in backends]
        finally:
            for proc in procs:
                stop(proc)
            record.unlink(missing_ok=True)
    n = last - first
    return {
        "workers_us": sum(mine) / n * 1e6,
        "database_us": sum(spent) / n * 1e6,
        "jobs_per_s": n / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs drained per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {"src": os.environ.get("BENCH_SRC") or "src"}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.backends.split(","):
            rounds = [one_round(kind, args.jobs, Path(tmp), i) for i in range(args.rounds)]
            summary = {
                key: {
                    "median": round(statistics.median(r[key] for r in rounds), 1),
                    "best": round((max if key == "jobs_per_s" else min)(r[key] for r in rounds), 1),
                }
                for key in rounds[0]
            }
            results[kind] = summary
            cpu = summary["workers_us"]
            line = f"{kind}: workers {cpu['median']:.1f} us/job (best {cpu['best']:.1f})"
            if kind == "postgres":
                db = summary["database_us"]
                line += f", database {db['median']:.1f} us/job (best {db['best']:.1f})"
            rate = summary["jobs_per_s"]
            print(f"{line}, {rate['median']:,.0f} jobs/s (best {rate['best']:,.0f})", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
