"""The harness: runs one workload of one system at a time, through that system's adapter
(bench/adapters/) in its own interpreter, on a fresh store, and returns the repetition's
figures. The workloads only ours takes part in are in bench/ours_only.py, the drain's variants
in bench/variants.py. Standard library only, like bench/run.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError, Unsupported
from bench.infra import (
    ADAPTER,
    LIVE,
    PG_URL,
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    backend,
    clean_env,
    ensure_venv,
    pip_freeze,
    run,
    spawn,
    stop,
)
from bench.ours_only import OursOnly
from bench.records import Records, percentile
from bench.systems import Sizes, System


@dataclass
class Harness(OursOnly):
    sizes: Sizes
    mode: str
    ours_python: str
    rundir: Path
    verbose: bool = True
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    pythons: dict[str, str] = field(default_factory=dict)
    _ports: int = 0

    def log(self, message: str) -> None:
        if self.verbose:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            print(f"[{stamp}] {message}", file=sys.stderr, flush=True)

    # adapters -------------------------------------------------------------------------------

    def adapter_env(self, system: System, url: str, record: Path) -> dict[str, str]:
        return clean_env(
            {
                "BENCH_BACKEND": system.backend,
                "BENCH_DB_URL": url,
                "BENCH_RECORD": str(record),
                **dict(system.env),
            }
        )

    def adapter(
        self, system: System, env: dict[str, str], *args: object, timeout: float
    ) -> dict[str, Any]:
        python = self.pythons[system.name]
        argv = [python, str(ADAPTER), system.module, *map(str, args)]
        out = run(argv, env=env, timeout=timeout)
        lines = [x for x in out.stdout.strip().splitlines() if x.startswith("{")]
        if not lines:
            raise BenchError(f"adapter {system.module} {args[0]} printed no result")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def prepare(self, system: System) -> None:
        if system.venv is None:
            python = self.ours_python
        else:
            assert system.venv is not None
            python = ensure_venv(system.venv, self.log)
        self.pythons[system.name] = python
        # `info` only imports the module; some open their store at import (SqliteHuey does).
        url = {
            "sqlite": f"sqlite:///{self.rundir / 'info.db'}",
            "redis": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "postgres": PG_URL.format(db="postgres"),
        }[system.backend]
        env = clean_env({"BENCH_BACKEND": system.backend, "BENCH_DB_URL": url})
        info = self.adapter(system, env, "info", timeout=120)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.rundir / 'info.db'}{suffix}").unlink(missing_ok=True)
        info["freeze"] = pip_freeze(python) if system.venv is not None else []
        self.info[system.name] = info

    @contextlib.contextmanager
    def workers(self, system: System, env: dict[str, str], tag: str) -> Iterator[None]:
        python = self.pythons[system.name]
        procs = []
        try:
            for index in range(self.info[system.name]["worker_launches"]):
                log = self.rundir / "logs" / f"{tag}-worker{index}.log"
                argv = [python, str(ADAPTER), system.module, "worker", str(index)]
                procs.append(spawn(argv, env, log))
            yield
        finally:
            for proc in procs:
                stop(proc)

    def check_alive(self, system: System, tag: str) -> None:
        dead = [p for p in LIVE.values() if p.poll() is not None]
        if dead:
            logs = sorted((self.rundir / "logs").glob(f"{tag}-worker*.log"))
            tail = " | ".join(
                line for log in logs for line in log.read_text(errors="replace").splitlines()[-4:]
            )
            raise BenchError(f"a worker of {system.name} exited early: {tail[-600:]}")

    # workloads ------------------------------------------------------------------------------

    def tag(self, system: System, workload: str, rep: int) -> str:
        return f"{system.name}-{workload}-{rep}"

    def submit_one(self, system: System, rep: int) -> dict[str, Any]:
        n = self.sizes.submit_one_n
        tag = self.tag(system, "submit_one", rep)
        with backend(system.backend, tag, self.rundir) as url:
            env = self.adapter_env(system, url, self.rundir / f"{tag}.rec")
            self.adapter(system, env, "setup", timeout=180)
            r = self.adapter(system, env, "submit-one", n, timeout=60 + n / 20)
        return {"jobs_per_s": n / r["seconds"], "n": n, "seconds": r["seconds"]}

    def submit_bulk(self, system: System, rep: int) -> dict[str, Any]:
        if not self.info[system.name]["bulk"]:
            raise Unsupported(self.info[system.name].get("no_bulk_reason") or "no bulk API")
        n = self.sizes.submit_bulk_n
        tag = self.tag(system, "submit_bulk", rep)
        with backend(system.backend, tag, self.rundir) as url:
            env = self.adapter_env(system, url, self.rundir / f"{tag}.rec")
            self.adapter(system, env, "setup", timeout=180)
            r = self.adapter(system, env, "submit-bulk", n, 1000, timeout=60 + n / 100)
        return {"jobs_per_s": n / r["seconds"], "n": n, "seconds": r["seconds"]}

    def drain(self, system: System, rep: int) -> dict[str, Any]:
        n = self.sizes.drain_n
        return self.drain_jobs(system, self.tag(system, "drain", rep), n, ("fill", n))

    def drain_jobs(
        self, system: System, tag: str, n: int, fill: tuple[object, ...]
    ) -> dict[str, Any]:
        """Markers 0..n-1 stored by the adapter command ``fill`` (no worker running), then
        the workers started: the drain and its variants (bench/variants.py)."""
        record = self.rundir / f"{tag}.rec"
        record.unlink(missing_ok=True)
        with backend(system.backend, tag, self.rundir) as url:
            env = self.adapter_env(system, url, record)
            self.adapter(system, env, "setup", timeout=180)
            filled = self.adapter(system, env, *fill, timeout=120 + n / 20)
            if "unsupported" in filled:
                raise Unsupported(filled["unsupported"])
            records = Records(record)
            markers = range(n)
            spawned = time.time()
            partial = False
            with self.workers(system, env, tag):
                deadline = time.monotonic() + self.sizes.drain_timeout
                while records.poll() < n or records.count(markers) < n:
                    if time.monotonic() > deadline:
                        # Out of time: rates over the jobs that did start, marked partial.
                        partial = True
                        break
                    self.check_alive(system, tag)
                    time.sleep(0.1)
        record.unlink(missing_ok=True)
        starts = sorted(records.first[m] for m in markers if m in records.first)
        done = len(starts)
        if done < max(200, n // 20):
            raise BenchError(f"drain: only {done}/{n} ran in {self.sizes.drain_timeout:g}s")
        lo, hi = round(0.1 * (done - 1)), round(0.9 * (done - 1))
        return {
            "steady_jobs_per_s": (hi - lo) / (starts[hi] - starts[lo]),
            "total_jobs_per_s": done / (starts[-1] - spawned),
            "first_start_s": starts[0] - spawned,
            "n": n,
            "done": done,
            "partial": partial,
            "fill_seconds": filled["seconds"],
            "fill_method": filled["method"],
            "duplicates": records.duplicates,
        }

    def latency(self, system: System, rep: int) -> dict[str, Any]:
        n, rate = self.sizes.latency_n, self.sizes.latency_rate
        tag = self.tag(system, "latency", rep)
        record = self.rundir / f"{tag}.rec"
        submits = self.rundir / f"{tag}.submits"
        record.unlink(missing_ok=True)
        warmups = [-1, -2, -3, -4, -5, -6]
        with backend(system.backend, tag, self.rundir) as url:
            env = self.adapter_env(system, url, record)
            self.adapter(system, env, "setup", timeout=180)
            records = Records(record)
            with self.workers(system, env, tag):
                # Workers up and warm: a few jobs ran. Then let them go idle.
                self.adapter(system, env, "submit-list", *warmups, timeout=60)
                self.wait_for(records, warmups, 90, system, tag, "warm-up jobs")
                time.sleep(2.0)
                r = self.adapter(
                    system, env, "submit-paced", n, rate, submits, timeout=60 + n / rate
                )
                self.wait_for(records, list(range(n)), 60, system, tag, "paced jobs")
        submitted: dict[int, float] = {}
        for line in submits.read_text().splitlines():
            marker, when = line.split()
            submitted[int(marker)] = float(when)
        latencies = sorted((records.first[i] - submitted[i]) * 1000 for i in range(n))
        for path in (record, submits):
            path.unlink(missing_ok=True)
        return {
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1],
            "n": n,
            "rate": rate,
            "behind": r.get("behind", 0),
        }

    def wait_for(
        self,
        records: Records,
        markers: list[int],
        timeout: float,
        system: System,
        tag: str,
        what: str,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            records.poll()
            if records.count(markers) == len(markers):
                return
            if time.monotonic() > deadline:
                done = records.count(markers)
                raise BenchError(f"{what}: {done}/{len(markers)} ran within {timeout:g}s")
            self.check_alive(system, tag)
            time.sleep(0.05)

    def workflow(self, system: System, rep: int) -> dict[str, Any]:
        """A root, N jobs after it and one child after all N (``workflow_n``), against draining
        N plain jobs, each on a fresh store with the workers started after the submit. Both
        are timed from the first job's start to the last one's (the child's), from the start
        records, so worker start-up counts in neither."""
        if not self.info[system.name].get("workflow"):
            raise Unsupported("no fan-out/fan-in (workflow) in this system's adapter")
        n, tag = self.sizes.workflow_n, self.tag(system, "workflow", rep)
        plain = self.timed_run(system, f"{tag}-plain", ("fill", n), list(range(n)))
        flow = self.timed_run(system, f"{tag}-flow", ("workflow-fill", n), [n + 1, *range(n + 1)])
        result: dict[str, Any] = {
            "n": n,
            "plain_s": plain["span"],
            "workflow_s": flow["span"],
            "ratio": flow["span"] / plain["span"],
            "workflow_jobs_per_s": (n + 2) / flow["span"],
            "plain_jobs_per_s": n / plain["span"],
            # start to start: the last of the N to the child (the records, for every system)
            "last_start_to_child_ms": (flow["starts"][n] - max(flow["starts"][i] for i in range(n)))
            * 1000,
            "submit_s": flow["filled"]["seconds"],
            "duplicates": plain["duplicates"] + flow["duplicates"],
        }
        if "times" in flow:  # ours: the store's finished_at of the N, as latency measures:
            # to the child's body starting (its record). The store's started_at is the claim's
            # clock, read before the claim waited for SQLite's write lock: it can be earlier.
            last_end = flow["times"]["last_parent_finished_at"]
            result["fan_in_ms"] = (flow["starts"][n] - last_end) * 1000
            result["store_fan_in_ms"] = flow["times"]["fan_in_ms"]
        return result

    def timed_run(
        self, system: System, tag: str, fill: tuple[str, int], markers: list[int]
    ) -> dict[str, Any]:
        record = self.rundir / f"{tag}.rec"
        record.unlink(missing_ok=True)
        out: dict[str, Any] = {}
        with backend(system.backend, tag, self.rundir) as url:
            env = self.adapter_env(system, url, record)
            self.adapter(system, env, "setup", timeout=180)
            out["filled"] = self.adapter(system, env, *fill, timeout=300 + fill[1] / 20)
            records = Records(record)
            with self.workers(system, env, tag):
                self.wait_for(records, markers, self.sizes.workflow_timeout, system, tag, tag)
            if fill[0] == "workflow-fill" and system.ours:
                out["times"] = self.adapter(
                    system, env, "workflow-times", out["filled"]["workflow_id"], timeout=120
                )
        record.unlink(missing_ok=True)
        starts = {m: records.first[m] for m in markers}
        out.update(
            starts=starts,
            span=max(starts.values()) - min(starts.values()),
            duplicates=records.duplicates,
        )
        return out
