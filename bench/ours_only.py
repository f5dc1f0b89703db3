"""The workloads only ours takes part in: POST /jobs over HTTP beside a bare FastAPI endpoint,
and the cost of a claim on a filled table. Standard library only, like bench/run.py."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.errors import BenchError, Unsupported
from bench.infra import BENCH, backend, clean_env, run, spawn, stop
from bench.systems import Sizes, System


def wrk(port: int, seconds: float) -> str:
    """wrk's report of ``seconds`` of POST /jobs (bench/post.lua) at 32 connections."""
    argv = ["wrk", "-t1", "-c32", f"-d{seconds:g}s", "--timeout", "10s", "--latency"]
    argv += ["-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}/jobs"]
    return run(argv, timeout=seconds + 60).stdout


def wait_healthy(port: int, server: subprocess.Popen[bytes], what: str) -> None:
    """Until the server at ``port`` answers /healthz; BenchError if it exits or 30 s pass."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the server for {what} did not start") from None
            time.sleep(0.1)


class OursOnly:
    """The ours-only workloads of bench/harness.py's Harness, which mixes them in: main runs
    every workload as the Harness method of its name."""

    # set by Harness, as is its tag()
    sizes: Sizes
    ours_python: str
    rundir: Path

    def free_port(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port

    def http(self, system: System, rep: int) -> dict[str, Any]:
        """POST /jobs at 32 connections: ours (serve --no-worker) and, measured right after it,
        a bare FastAPI endpoint on uvicorn with the same settings."""
        if shutil.which("wrk") is None:
            raise Unsupported("wrk is not installed (apt-get install -y wrk)")
        tag = self.tag(system, "http", rep)
        port = self.free_port()
        with backend(system.backend, tag, self.rundir) as url:
            env = clean_env()
            bindir = Path(self.ours_python).parent
            argv = [
                str(bindir / "jobhandler"),
                "serve",
                "--no-worker",
                "--app",
                "bench.adapters.jobhandler_peer:app",
                "--database",
                url,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            ours = self.measure_http(argv, env, port, tag, batches=True)
        port = self.free_port()
        argv = [self.ours_python, str(BENCH / "http_baseline.py"), "--port", str(port)]
        bare = self.measure_http(argv, clean_env(), port, tag + "-bare")
        return {
            "req_per_s": ours["req_per_s"],
            "p50_ms": ours["p50_ms"],
            "p99_ms": ours["p99_ms"],
            "errors": ours["errors"],
            "bare_req_per_s": bare["req_per_s"],
            "bare_p50_ms": bare["p50_ms"],
            "bare_p99_ms": bare["p99_ms"],
            "bare_errors": bare["errors"],
            "of_bare": ours["req_per_s"] / bare["req_per_s"],
            "batch_jobs_per_s": ours["batch_jobs_per_s"],
        }

    def measure_http(
        self, argv: list[str], env: dict[str, str], port: int, tag: str, batches: bool = False
    ) -> dict[str, Any]:
        server = spawn(argv, env, self.rundir / "logs" / f"{tag}-server.log")
        try:
            wait_healthy(port, server, tag)
            seconds = self.sizes.http_seconds
            out = wrk(port, seconds)
            batch_rate = post_batches(port, seconds) if batches else None
        finally:
            stop(server)
        return {**parse_wrk(out), "batch_jobs_per_s": batch_rate}

    def claim_cost(self, system: System, rep: int) -> dict[str, Any]:
        """Claim+complete cycles on an empty table and on one with ``claim_fill`` finished jobs.
        One fresh database holds all repetitions (filling it is the slow part)."""
        tag = self.tag(system, "claim_cost", rep)
        reps = self.sizes.reps["claim_cost"]
        with backend(system.backend, tag, self.rundir) as url:
            out = run(
                [
                    self.ours_python,
                    str(BENCH / "claim_cost.py"),
                    "--database",
                    url,
                    "--fill",
                    str(self.sizes.claim_fill),
                    "--cycles",
                    str(self.sizes.claim_cycles),
                    "--reps",
                    str(reps),
                ],
                env=clean_env(),
                timeout=3600,
            )
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


HTTP_BATCH = 1000  # jobs per POST /jobs/batch (its most)


def post_batches(port: int, seconds: float) -> float:
    """Jobs/s of ``POST /jobs/batch`` with 1,000 no-op jobs a request, one client, one after
    another for about ``seconds`` (after one untimed request)."""
    body = json.dumps({"jobs": [{"task": "noop", "payload": i} for i in range(HTTP_BATCH)]})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/jobs/batch",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
    start, sent = time.perf_counter(), 0
    while sent == 0 or time.perf_counter() - start < seconds:
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
        sent += HTTP_BATCH
    return sent / (time.perf_counter() - start)


def parse_wrk(text: str) -> dict[str, Any]:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rps is None:
        raise BenchError("wrk printed no Requests/sec: " + text[-300:])
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors: (.*)", text)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(x) for x in re.findall(r"\d+", socket_errors.group(1)))
    return {
        "req_per_s": float(rps.group(1)),
        "p50_ms": ms(p50.group(1)) if p50 else None,
        "p99_ms": ms(p99.group(1)) if p99 else None,
        "errors": errors,
    }
