"""CPU time per HTTP POST /jobs: ours (``serve --no-worker``) on SQLite and PostgreSQL and the
bare FastAPI endpoint (bench/http_baseline.py), driven by wrk as bench/run.py's http workload
drives them, in interleaved rounds.

Requests per second depend on what else the machine runs; the server process's CPU time (user
plus system, all its threads, read from /proc) divided by the requests it answered does much
less, so this is the figure to compare a change by. PostgreSQL's own backend CPU is not in it.

    nice -n 19 ionice -c 3 .venv/bin/python bench/http_cost.py --rounds 3 --seconds 8
    nice -n 19 ionice -c 3 .venv/bin/python bench/http_cost.py --systems sqlite \\
        --src before=/tmp/before/src --src after=src      # two copies of src/, interleaved

Prints one line per measurement and a JSON line of the medians (us of CPU per request) last.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infra import BENCH, backend, clean_env, spawn, stop
from bench.ours_only import parse_wrk, wait_healthy, wrk

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat_path: Path) -> float:
    """User plus system time of a process (all its threads) or of one thread: fields 14 and 15
    of its stat."""
    stat = stat_path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_of(pid: int) -> tuple[float, float]:
    """The whole process's CPU seconds, and its main thread's (the event loop's)."""
    return cpu_seconds(Path(f"/proc/{pid}/stat")), cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def measure(argv: list[str], env: dict[str, str], port: int, seconds: float) -> dict[str, Any]:
    """One server: a second of warm-up, then ``seconds`` of wrk, timed by the server's CPU."""
    server = spawn(argv, env, Path(tempfile.gettempdir()) / "http_cost-server.log")
    try:
        wait_healthy(port, server, "http_cost")
        wrk(port, 1)
        before = cpu_of(server.pid)
        out = wrk(port, seconds)
        after = cpu_of(server.pid)
    finally:
        stop(server)
    served = re.search(r"(\d+) requests in", out)
    assert served is not None, out
    requests = int(served.group(1))
    used, loop = (a - b for a, b in zip(after, before, strict=True))
    return {
        **parse_wrk(out),
        "requests": requests,
        "cpu_us": used / requests * 1e6,
        "loop_us": loop / requests * 1e6,  # the rest is the store's threads (SQLite's writes)
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_system(system: str, src: str | None, seconds: float, rundir: Path) -> dict[str, Any]:
    env = clean_env()
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), env["PYTHONPATH"]])
    port = free_port()
    python = sys.executable
    if system == "bare":
        return measure(
            [python, str(BENCH / "http_baseline.py"), "--port", str(port)], env, port, seconds
        )
    with backend(system, f"http_cost_{system}", rundir) as url:
        argv = [python, "-m", "jobhandler", "serve", "--no-worker"]
        argv += ["--app", "bench.adapters.jobhandler_peer:app", "--database", url]
        argv += ["--port", str(port), "--log-level", "warning"]
        return measure(argv, env, port, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="sqlite,postgres,bare")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--src", action="append", default=[], help="NAME=PATH: measure ours from this src/"
    )
    args = parser.parse_args()
    sources: list[tuple[str, str | None]] = [
        (name, path) for name, _, path in (s.partition("=") for s in args.src)
    ] or [("", None)]
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as rundir:
        for _ in range(args.rounds):
            for system in args.systems.split(","):
                for name, src in sources if system != "bare" else [("", None)]:
                    label = f"{system}@{name}" if name else system
                    got = measure_system(system, src, args.seconds, Path(rundir))
                    results.setdefault(label, []).append(got["cpu_us"])
                    print(
                        f"{label:24} {got['cpu_us']:7.1f} us CPU/request"
                        f" (loop thread {got['loop_us']:5.1f})"
                        f" {got['req_per_s']:8.0f} req/s  errors {got['errors']}",
                        flush=True,
                    )
    print(json.dumps({label: round(statistics.median(v), 1) for label, v in results.items()}))


if __name__ == "__main__":
    main()
