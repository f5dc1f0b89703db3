"""The scale curve on PostgreSQL, and a worker's memory with a million jobs queued (issue #13).
Run with the repo's interpreter, from the repository root:

    .venv/bin/python bench/scale.py                  # all three parts, about 6 minutes
    .venv/bin/python bench/scale.py --parts drain --drain-n 20000 --workers 1,2,4

(a) drain: N no-op jobs are queued first (``noop.enqueue_many``, 1,000 a call), then 1, 2 or 4
    ``jobhandler worker`` processes start. The steady rate is taken from the job start records
    between the 10th and 90th percentile, as in bench/run.py. Beside it, the CPU seconds the
    workers and the PostgreSQL server processes used over the drain, from /proc, as a share of
    the machine's cores: that names the limit.
(b) http: ``POST /jobs`` with wrk (32 connections in all) against 1 and 2
    ``jobhandler serve --no-worker`` processes, with their CPU and PostgreSQL's.
(c) memory: one worker serving queue ``default``; its RSS (/proc/<pid>/status VmRSS) when idle,
    after 1,000,000 jobs were queued on queue ``parked`` (which its claim scans past), after
    idling beside them, and while and after it drains a slice of jobs on ``default``.

Every run gets a fresh database, dropped afterwards; every process runs in its own process group
and is stopped (SIGTERM, then SIGKILL) on any exit. One JSON line at the end holds everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infra import BENCH, CREATED_DBS, backend, clean_env, drop_db, run, spawn, stop, stop_all
from bench.ours_only import parse_wrk
from bench.records import Records

BIN = Path(sys.executable).parent
APP = "bench.adapters.jobhandler_peer:app"
WORK = BENCH / ".work" / f"scale-{os.getpid()}"
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# -- /proc ----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return [head.split("(", 1)[1], *rest.split()]  # [comm, state, ppid, pgrp, ...]


def cpu_seconds(group_ids: set[int], comm: str | None = None) -> float:
    """utime + stime of every live process in these process groups (or named ``comm``)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields is None:
            continue
        if (comm is not None and fields[0] == comm) or int(fields[3]) in group_ids:
            total += int(fields[12]) + int(fields[13])
    return total / TICK


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICK, sum(values) / TICK


class CpuMeter:
    """CPU used between start and stop by some process groups, by PostgreSQL, by the machine."""

    def __init__(self, groups: set[int]) -> None:
        self.groups = groups
        self.start = (cpu_seconds(groups), cpu_seconds(set(), "postgres"), *machine_busy())
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        ours, pg = cpu_seconds(self.groups), cpu_seconds(set(), "postgres")
        busy, every = machine_busy()
        wall = time.monotonic() - self.t0
        machine = (busy - self.start[2]) / wall
        return {
            "wall_s": wall,
            "ours_cores": (ours - self.start[0]) / wall,
            "postgres_cores": (pg - self.start[1]) / wall,
            "machine_busy_pct": 100 * (busy - self.start[2]) / max(every - self.start[3], 1e-9),
            # everything else on the box: this script, wrk, and other people's work
            "other_cores": machine - (ours - self.start[0] + pg - self.start[1]) / wall,
        }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# -- pieces ---------------------------------------------------------------------------------------


def database(tag: str) -> contextlib.AbstractContextManager[str]:
    """A fresh PostgreSQL database, as the harness makes one for each run."""
    return backend("postgres", f"scale_{tag}", WORK)


def job_env(url: str, record: Path) -> dict[str, str]:
    return clean_env({"BENCH_DB_URL": url, "BENCH_RECORD": str(record)})


def enqueue(url: str, n: int, first: int = 0, queue: str = "default", batch: int = 1000) -> float:
    """Queue ``n`` no-op jobs through the Python API; returns the seconds it took."""
    os.environ["BENCH_DB_URL"] = url
    from bench.adapters.jobhandler_peer import app, noop, settings

    async def go() -> float:
        async with app.connected(settings()):
            start = time.perf_counter()
            for lo in range(first, first + n, batch):
                hi = min(lo + batch, first + n)
                await noop.enqueue_many(list(range(lo, hi)), queue=queue)
                if (lo - first) % 100_000 == 0 and n >= 100_000:
                    print(f"    queued {lo - first:,} of {n:,}", file=sys.stderr, flush=True)
            return time.perf_counter() - start

    return asyncio.run(go())


def worker(env: dict[str, str], url: str, tag: str, *extra: str) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "jobhandler"), "worker", "--app", APP, "--database", url]
    return spawn([*argv, "--log-level", "warning", *extra], env, WORK / f"{tag}.log")


def wait_records(records: Records, n: int, procs: list[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while records.poll() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(records.first)}/{n} jobs ran in {timeout:g} s")
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a process exited early; see " + str(WORK))
        time.sleep(0.05)


def steady(records: Records, n: int) -> float:
    starts = sorted(records.first.values())
    lo, hi = round(0.1 * (n - 1)), round(0.9 * (n - 1))
    return (hi - lo) / (starts[hi] - starts[lo])


# -- (a) drain ------------------------------------------------------------------------------------


def drain(workers: int, n: int) -> dict[str, Any]:
    record = WORK / f"drain{workers}.rec"
    with database(f"drain{workers}") as url:
        enqueue(url, n)
        env = job_env(url, record)
        records = Records(record)
        procs = [worker(env, url, f"drain{workers}-{i}") for i in range(workers)]
        try:
            # CPU is metered over the steady part: from the first job start to the last.
            wait_records(records, 1, procs, 60)
            meter = CpuMeter({p.pid for p in procs})
            wait_records(records, n, procs, 600)
            cpu = meter.stop()
        finally:
            for p in procs:
                stop(p)
    return {"workers": workers, "n": n, "steady_jobs_per_s": steady(records, n), **cpu}


# -- (b) http -------------------------------------------------------------------------------------


def server(url: str, port: int, tag: str) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "jobhandler"), "serve", "--no-worker", "--app", APP, "--database", url]
    argv += ["--port", str(port), "--log-level", "warning"]
    proc = spawn(argv, clean_env(), WORK / f"{tag}.log")
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {tag} did not start; see {WORK}") from None
            time.sleep(0.1)


def http(servers: int, seconds: int) -> dict[str, Any]:
    from bench.large_store import free_port

    with database(f"http{servers}") as url:
        ports = [free_port() for _ in range(servers)]
        procs = [server(url, port, f"http{servers}-{i}") for i, port in enumerate(ports)]
        try:
            lua = str(BENCH / "post.lua")
            common = ["wrk", "-t1", f"-c{32 // servers}", f"-d{seconds}s", "--timeout", "10s"]
            clients = [
                subprocess.Popen(
                    [*common, "-s", lua, f"http://127.0.0.1:{port}/jobs"],
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                for port in ports
            ]
            meter = CpuMeter({p.pid for p in procs})
            outs = [c.communicate(timeout=seconds + 60)[0] for c in clients]
            cpu = meter.stop()
        finally:
            for p in procs:
                stop(p)
    found = [parse_wrk(out) for out in outs]
    rate = sum(f["req_per_s"] for f in found)
    errors = sum(f["errors"] for f in found)
    return {"servers": servers, "submits_per_s": rate, "errors": errors, **cpu}


# -- (c) memory -----------------------------------------------------------------------------------


def memory(parked: int, slice_n: int, idle_s: float) -> dict[str, Any]:
    record = WORK / "memory.rec"
    found: dict[str, Any] = {"parked": parked, "slice": slice_n}
    with database("memory") as url:
        enqueue(url, 10)  # warm: the worker has claimed and run jobs before the first sample
        env = job_env(url, record)
        records = Records(record)
        proc = worker(env, url, "memory", "--queues", "default")
        try:
            wait_records(records, 10, [proc], 60)
            time.sleep(idle_s)  # the baseline is an idle worker, as the later samples are
            found["rss_idle_empty_mb"] = rss_mb(proc.pid)
            found["fill_s"] = enqueue(url, parked, first=1_000_000_000, queue="parked", batch=5000)
            found["rss_after_fill_mb"] = rss_mb(proc.pid)
            time.sleep(idle_s)
            found["rss_idle_full_mb"] = rss_mb(proc.pid)
            # The first slice runs before autovacuum has analysed the fill, as it would in use;
            # the second after VACUUM ANALYZE.
            found["slice_fresh"] = slice_drain(url, proc, records, 10, slice_n)
            found["rss_peak_draining_mb"] = found["slice_fresh"]["rss_peak_mb"]
            vacuum_analyze(url)
            found["slice_analyzed"] = slice_drain(url, proc, records, 10 + slice_n, slice_n)
            time.sleep(idle_s)
            found["rss_after_slice_mb"] = rss_mb(proc.pid)
            queued = psql_count(url)
            found["still_queued"] = queued
        finally:
            stop(proc)
    return found


def slice_drain(
    url: str, proc: subprocess.Popen[bytes], records: Records, first: int, n: int
) -> dict[str, float]:
    """Queue jobs ``first``..``first + n`` on ``default``; the worker's peak RSS, rate and CPU."""
    enqueue(url, n, first=first)
    meter, peak = CpuMeter({proc.pid}), 0.0
    deadline = time.monotonic() + 300
    while records.poll() < first + n:
        peak = max(peak, rss_mb(proc.pid))
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the slice did not drain; see {WORK}")
        time.sleep(0.05)
    cpu = meter.stop()
    starts = sorted(t for m, t in records.first.items() if first <= m < first + n)
    lo, hi = round(0.1 * (n - 1)), round(0.9 * (n - 1))
    return {"jobs_per_s": (hi - lo) / (starts[hi] - starts[lo]), "rss_peak_mb": peak, **cpu}


def vacuum_analyze(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-qAtc", "VACUUM ANALYZE"]
    run(argv, timeout=600)


def psql_count(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    sql = "SELECT count(*) FROM jobs WHERE status = 'queued'"
    out = run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-qAtc", sql], timeout=120)
    return int(out.stdout.strip())


# -- main -----------------------------------------------------------------------------------------


def cleanup() -> None:
    stop_all()
    for name in list(CREATED_DBS):
        drop_db(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="drain,http,memory")
    parser.add_argument("--drain-n", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--servers", default="1,2")
    parser.add_argument("--http-seconds", type=int, default=10)
    parser.add_argument("--parked", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=20_000)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before a sample")
    args = parser.parse_args()
    parts = args.parts.split(",")
    WORK.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    out: dict[str, Any] = {"cores": CORES}
    try:
        if "drain" in parts:
            out["drain"] = []
            for w in (int(x) for x in args.workers.split(",")):
                out["drain"].append(r := drain(w, args.drain_n))
                print(
                    f"drain {w} worker(s): {r['steady_jobs_per_s']:,.0f} jobs/s; CPU cores: "
                    f"workers {r['ours_cores']:.2f}, postgres {r['postgres_cores']:.2f}, "
                    f"other {r['other_cores']:.2f}, "
                    f"machine {r['machine_busy_pct']:.0f}% of {CORES}",
                    flush=True,
                )
        if "http" in parts:
            out["http"] = []
            for s in (int(x) for x in args.servers.split(",")):
                out["http"].append(r := http(s, args.http_seconds))
                print(
                    f"http {s} server(s): {r['submits_per_s']:,.0f} submits/s "
                    f"({r['errors']} errors); CPU cores: servers {r['ours_cores']:.2f}, "
                    f"postgres {r['postgres_cores']:.2f}, other {r['other_cores']:.2f}, "
                    f"machine {r['machine_busy_pct']:.0f}%",
                    flush=True,
                )
        if "memory" in parts:
            out["memory"] = r = memory(args.parked, args.slice, args.idle)
            print(
                f"memory: RSS idle {r['rss_idle_empty_mb']:.1f} MB; after {args.parked:,} "
                f"parked {r['rss_after_fill_mb']:.1f}, idle beside them "
                f"{r['rss_idle_full_mb']:.1f}, draining {args.slice:,} peak "
                f"{r['rss_peak_draining_mb']:.1f}, after {r['rss_after_slice_mb']:.1f} MB "
                f"(fill {r['fill_s']:.0f} s)",
                flush=True,
            )
            for key in ("slice_fresh", "slice_analyzed"):
                f = r[key]
                print(
                    f"  {key}: {f['jobs_per_s']:,.0f} jobs/s; CPU cores: worker "
                    f"{f['ours_cores']:.2f}, postgres {f['postgres_cores']:.2f}, "
                    f"other {f['other_cores']:.2f}",
                    flush=True,
                )
    finally:
        cleanup()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
