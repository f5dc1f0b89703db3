#!/usr/bin/env python3
"""Benchmarks: Job Handler on SQLite and PostgreSQL beside its Python peers, in one run.

    python3 bench/run.py --quick                 # every system, small N, 1 repetition
    python3 bench/run.py --full                  # the numbers in docs/benchmarks.md
    python3 bench/run.py --quick --systems jobhandler-sqlite,rq-redis --workloads drain
    python3 bench/run.py --profile               # py-spy over our workers draining on SQLite
    python3 bench/run.py --list

Standard library only. It never imports a measured system: each one has an adapter
(bench/adapters/) run by that system's own interpreter in a subprocess. Peers are installed
from bench/requirements-peers.txt into bench/.venvs/<peer>; ours runs from the repo's .venv.
Results (JSON and the markdown table) go to bench/results/, logs to bench/.work/. Every
subprocess has a timeout; workers, servers and databases are cleaned up even on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import variants
from bench.tables import cell, fmt, markdown_table, values, workflow_table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
REQUIREMENTS = BENCH / "requirements-peers.txt"
ADAPTER = BENCH / "adapters" / "adapter.py"

# BENCH_REDIS_DB: another database number, when another run shares this Redis (each run
# empties its database before and after every measurement).
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "12"))
# BENCH_PG_PORT points every run at another server of 127.0.0.1 (the hour's soak uses one with
# PostgreSQL's default settings, autovacuum on, which this machine's shared server turns off).
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", "postgres"]
PG_URL = "postgresql://postgres@127.0.0.1:" + PG_PORT + "/{db}"


# -- systems and sizes ----------------------------------------------------------------------------


FSYNC = "fsync"  # a power cut loses nothing committed
PROCESS = "process"  # survives a killed process, not a power cut (SQLite NORMAL in WAL)
MEMORY = "memory"  # Redis as run here (no RDB, no AOF): a restart loses everything


@dataclass(frozen=True)
class System:
    name: str
    module: str  # bench.adapters.<module>
    venv: str | None  # a section of requirements-peers.txt; None: the repo's .venv
    backend: str  # sqlite | redis | postgres
    # What a committed submit survives, as run here: compare only equal durabilities.
    durability: str = FSYNC
    env: tuple[tuple[str, str], ...] = ()  # added to the adapter's and the workers' environment
    only: frozenset[str] | None = None  # the workloads it takes part in; None: all

    @property
    def ours(self) -> bool:
        return self.module == "jobhandler_peer"

    @property
    def bare(self) -> bool:
        """A bare loop of one-row commits: the limit the disk or the database sets."""
        return self.module == "bare_peer"


SUBMIT_ONLY = frozenset({"submit_one", "submit_bulk"})
NORMAL = (("JOBHANDLER_SQLITE_SYNCHRONOUS", "NORMAL"),)

SYSTEMS = [
    System("jobhandler-sqlite", "jobhandler_peer", None, "sqlite"),
    System("jobhandler-sqlite-normal", "jobhandler_peer", None, "sqlite", PROCESS, NORMAL),
    System("jobhandler-postgres", "jobhandler_peer", None, "postgres"),
    System("bare-sqlite", "bare_peer", None, "sqlite", FSYNC, (), SUBMIT_ONLY),
    System("bare-sqlite-normal", "bare_peer", None, "sqlite", PROCESS, NORMAL, SUBMIT_ONLY),
    System("bare-psycopg", "bare_peer", None, "postgres", FSYNC, (), SUBMIT_ONLY),
    System("celery-redis", "celery_peer", "celery", "redis", MEMORY),
    # Celery's chord needs a result backend, which celery-redis runs without: a system of its own.
    System(
        "celery-chord-redis",
        "celery_chord_peer",
        "celery",
        "redis",
        MEMORY,
        (),
        frozenset({"workflow"}),
    ),
    System("rq-redis", "rq_peer", "rq", "redis", MEMORY),
    System("dramatiq-redis", "dramatiq_peer", "dramatiq", "redis", MEMORY),
    System("huey-sqlite", "huey_peer", "huey", "sqlite"),
    System("huey-redis", "huey_peer", "huey", "redis", MEMORY),
    System("arq-redis", "arq_peer", "arq", "redis", MEMORY),
    System("saq-redis", "saq_peer", "saq", "redis", MEMORY),
    System("procrastinate-postgres", "procrastinate_peer", "procrastinate", "postgres"),
    System("pgqueuer-postgres", "pgqueuer_peer", "pgqueuer", "postgres"),
]
BY_NAME = {s.name: s for s in SYSTEMS}

# The drain's variants right after it: their ratios are to it, so the less time between, the better.
WORKLOADS = [
    "submit_one",
    "submit_bulk",
    "drain",
    *variants.VARIANTS,
    "latency",
    "http",
    "claim_cost",
    "workflow",
]
OURS_ONLY = {"http", "claim_cost", *variants.VARIANTS}


@dataclass(frozen=True)
class Sizes:
    submit_one_n: int
    submit_bulk_n: int
    drain_n: int
    latency_n: int
    latency_rate: float
    http_seconds: int
    claim_fill: int
    claim_cycles: int
    reps: dict[str, int]
    drain_timeout: float
    workflow_n: int = 1000  # root -> N -> child, against draining N plain jobs
    drain_keys: int = 100  # drain_keyed: the drain's N jobs spread over this many keys
    workflow_timeout: float = 120.0


QUICK = Sizes(
    submit_one_n=300,
    submit_bulk_n=3000,
    drain_n=2000,
    latency_n=100,
    latency_rate=100.0,
    http_seconds=3,
    claim_fill=20_000,
    claim_cycles=300,
    reps={w: 1 for w in WORKLOADS},
    drain_timeout=60.0,
    workflow_n=1000,
    workflow_timeout=120.0,
)
FULL = Sizes(
    submit_one_n=2000,
    submit_bulk_n=20_000,
    drain_n=20_000,
    latency_n=500,
    latency_rate=100.0,
    http_seconds=10,
    claim_fill=1_000_000,
    claim_cycles=2000,
    reps={
        "submit_one": 5,
        "submit_bulk": 5,
        "drain": 3,
        **{w: 3 for w in variants.VARIANTS},
        "latency": 3,
        "http": 3,
        "claim_cost": 3,
        "workflow": 1,
    },
    drain_timeout=120.0,
    workflow_n=10_000,
    workflow_timeout=600.0,
)


class BenchError(Exception):
    pass


class Unsupported(Exception):
    pass


# -- processes: every one in its own process group, stopped for sure ------------------------------

LIVE: dict[int, subprocess.Popen[bytes]] = {}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBHANDLER_", "BENCH_", "PG", "CELERY_", "PROCRASTINATE_"))
        and k not in {"VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"}
    }
    # BENCH_SRC: another copy of src/ to measure instead (a before/after of one change).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("BENCH_SRC"), str(ROOT)]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    LIVE[proc.pid] = proc
    return proc


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after ``grace`` seconds."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    LIVE.pop(proc.pid, None)


def stop_all() -> None:
    for proc in list(LIVE.values()):
        stop(proc, grace=3.0)


def run(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run to completion within ``timeout`` seconds (its whole process group is killed after)."""
    proc = subprocess.Popen(
        argv,
        env=env or clean_env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    LIVE[proc.pid] = proc  # type: ignore[assignment]
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BenchError(f"timed out after {timeout:g}s: {' '.join(argv[:4])}") from None
    finally:
        LIVE.pop(proc.pid, None)
        with contextlib.suppress(ProcessLookupError):  # anything it left behind
            os.killpg(proc.pid, signal.SIGKILL)
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-6:]
        raise BenchError(f"{' '.join(argv[:4])} exited {proc.returncode}: " + " | ".join(tail))
    return result


# -- backends: a fresh database for every repetition ----------------------------------------------

CREATED_DBS: set[str] = set()


def psql(sql: str, timeout: float = 60.0) -> str:
    out = run([*PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], timeout=timeout)
    return out.stdout.strip()


def redis_cli(*args: str, timeout: float = 30.0) -> str:
    argv = ["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "-n", str(REDIS_DB), *args]
    return run(argv, timeout=timeout).stdout.strip()


def drop_db(name: str) -> None:
    with contextlib.suppress(BenchError):
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    CREATED_DBS.discard(name)


@contextlib.contextmanager
def backend(kind: str, tag: str, rundir: Path) -> Iterator[str]:
    """A fresh, empty store of ``kind``; yields the URL (``sqlite:///PATH`` for SQLite: a peer
    that wants the path takes the prefix off)."""
    if kind == "sqlite":
        path = rundir / f"{tag}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif kind == "redis":
        redis_cli("FLUSHDB")
        try:
            yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
        finally:
            with contextlib.suppress(BenchError):
                redis_cli("FLUSHDB")
    elif kind == "postgres":
        name = re.sub(r"[^a-z0-9_]", "_", f"bench_{tag}_{os.getpid()}".lower())[:60]
        drop_db(name)
        psql(f"CREATE DATABASE {name}")
        CREATED_DBS.add(name)
        try:
            yield PG_URL.format(db=name)
        finally:
            drop_db(name)
    else:
        raise ValueError(kind)


# -- virtualenvs ----------------------------------------------------------------------------------


def requirement_sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in REQUIREMENTS.read_text().splitlines():
        header = re.fullmatch(r"#\s*\[([a-z0-9_-]+)\]\s*", line.strip())
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None and line.strip() and not line.lstrip().startswith("#"):
            current.append(line.strip())
    return sections


def venv_python(section: str | None, ours_python: str) -> str:
    if section is None:
        return ours_python
    return str(VENVS / section / "bin" / "python")


def ensure_venv(section: str, log: Callable[[str], None]) -> str:
    lines = requirement_sections().get(section)
    if not lines:
        raise BenchError(f"no section [{section}] in {REQUIREMENTS.name}")
    want = "\n".join([f"python {platform.python_version()}", *lines]) + "\n"
    path = VENVS / section
    stamp = path / ".bench-requirements"
    python = path / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return str(python)
    log(f"installing [{section}] into {path.relative_to(ROOT)} ...")
    shutil.rmtree(path, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(path)], timeout=300)
    reqs = path / "requirements.txt"
    reqs.write_text("\n".join(lines) + "\n")
    run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(reqs)],
        timeout=1200,
    )
    stamp.write_text(want)
    return str(python)


def pip_freeze(python: str) -> list[str]:
    with contextlib.suppress(BenchError):
        out = run([python, "-m", "pip", "freeze", "--disable-pip-version-check"], timeout=120)
        return [x for x in out.stdout.splitlines() if x and not x.startswith("-e ")]
    return []


# -- start records --------------------------------------------------------------------------------


class Records:
    """Reads a start-record file as it grows: the first start time seen for each marker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.first: dict[int, float] = {}
        self.duplicates = 0

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return len(self.first)
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            try:
                marker_text, when_text = line.split()
                marker, when = int(marker_text), float(when_text)
            except ValueError:
                continue
            if marker in self.first:
                self.duplicates += 1
            else:
                self.first[marker] = when
        return len(self.first)

    def count(self, markers: range | list[int]) -> int:
        return sum(1 for m in markers if m in self.first)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


# -- the harness ----------------------------------------------------------------------------------


@dataclass
class Harness:
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

    # ours only ------------------------------------------------------------------------------

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
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise BenchError(f"the server for {tag} did not start") from None
                    time.sleep(0.1)
            seconds = self.sizes.http_seconds
            out = run(
                [
                    "wrk",
                    "-t1",
                    "-c32",
                    f"-d{seconds}s",
                    "--timeout",
                    "10s",
                    "--latency",
                    "-s",
                    str(BENCH / "post.lua"),
                    f"http://127.0.0.1:{port}/jobs",
                ],
                timeout=seconds + 60,
            )
            batch_rate = post_batches(port, seconds) if batches else None
        finally:
            stop(server)
        return {**parse_wrk(out.stdout), "batch_jobs_per_s": batch_rate}

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


# -- the report -----------------------------------------------------------------------------------

# (workload, metric, column title, higher is better)
COLUMNS = [
    ("submit_one", "jobs_per_s", "submit one (jobs/s)", True),
    ("submit_bulk", "jobs_per_s", "bulk submit (jobs/s)", True),
    ("drain", "steady_jobs_per_s", "drain, steady (jobs/s)", True),
    ("drain", "total_jobs_per_s", "drain, incl. worker start (jobs/s)", True),
    ("latency", "p50_ms", "pickup p50 (ms)", False),
    ("latency", "p99_ms", "pickup p99 (ms)", False),
]
OURS_COLUMNS = [
    ("http", "req_per_s", "HTTP POST /jobs (req/s)", True),
    ("http", "bare_req_per_s", "bare FastAPI, same run (req/s)", True),
    ("http", "of_bare", "ours / bare", True),
    ("http", "p99_ms", "HTTP p99 (ms)", False),
    ("http", "batch_jobs_per_s", "HTTP batches of 1,000 (jobs/s)", True),
    ("claim_cost", "empty_cycles_per_s", "claim+complete, empty table (cycles/s)", True),
    ("claim_cost", "full_cycles_per_s", "claim+complete, filled table (cycles/s)", True),
    ("claim_cost", "full_over_empty", "filled / empty", True),
]


def bare_ratios(results: dict[str, Any], systems: list[str]) -> list[str]:
    """Ours as a share of the bare loop on the same store at the same durability."""
    lines = []
    for name in systems:
        mine = BY_NAME[name]
        bare = [
            b
            for b in systems
            if BY_NAME[b].bare
            and BY_NAME[b].backend == mine.backend
            and BY_NAME[b].durability == mine.durability
        ]
        if not mine.ours or not bare:
            continue
        for workload in ("submit_one", "submit_bulk"):
            ours_v = values(results, name, workload, "jobs_per_s")
            bare_v = values(results, bare[0], workload, "jobs_per_s")
            if ours_v and bare_v:
                share = statistics.median(ours_v) / statistics.median(bare_v)
                lines.append(f"- {name} {workload}: {share:.0%} of {bare[0]} ({mine.durability})")
    return ["Of the bare limit (medians):", "", *lines, ""] if lines else []


def report(results: dict[str, Any]) -> str:
    systems = [s for s in results["order"] if s in results["systems"]]
    lines = []
    m = results["machine"]
    lines.append(
        f"Mode: **{results['mode']}** ({results['started']}); {m['nproc']} cores, "
        f"{m['memory_gib']} GiB, Python {m['python']}, PostgreSQL {m['postgres']}, "
        f"Redis {m['redis']}; load average {m['loadavg_start']} at start, "
        f"{m.get('loadavg_end', '?')} at end. Job Handler at {m.get('git_commit', '?')} "
        f"({m.get('src_files_changed_since_commit', '?')} files under src/ changed since)."
    )
    lines.append("")
    lines.append("Median [min-max] over the repetitions; n/a = the system has no such API.")
    lines.append("")
    lines.append(
        f"Durability: {FSYNC} = a power cut loses nothing committed; {PROCESS} = survives a "
        f"killed process, not a power cut; {MEMORY} = a restart loses everything (Redis here "
        "keeps nothing on disk). bare-* are one-row commits in a loop: the disk's or the "
        "database's own limit."
    )
    lines.append("")
    header = ["system", "durability", *[c[2] for c in COLUMNS]]
    rows = [
        [name, BY_NAME[name].durability, *[cell(results, name, w, k) for w, k, _, _ in COLUMNS]]
        for name in systems
    ]
    lines += [*markdown_table(header, rows), ""]
    lines.extend(bare_ratios(results, systems))

    ours = [s for s in systems if BY_NAME[s].ours]
    peers = [s for s in systems if not BY_NAME[s].ours and not BY_NAME[s].bare]
    if ours and peers:
        lines.append(
            "Ours ÷ best peer (medians). Throughput: above 1 means ours is faster. "
            "Latency: below 1 means ours picks up sooner."
        )
        lines.append("")
        lines.append("| workload | best peer | " + " | ".join(f"{o} ÷ best" for o in ours) + " |")
        lines.append("|---|---|" + "---|" * len(ours))
        for workload, metric, title, higher in COLUMNS:
            medians = {
                p: statistics.median(vs)
                for p in peers
                if (vs := values(results, p, workload, metric))
            }
            if not medians:
                continue
            best = (max if higher else min)(medians, key=lambda p: medians[p])
            ratios = []
            for o in ours:
                vs = values(results, o, workload, metric)
                ratios.append(f"{statistics.median(vs) / medians[best]:.2f}" if vs else "-")
            lines.append(
                f"| {title} | {best} ({fmt(medians[best])}) | " + " | ".join(ratios) + " |"
            )
        lines.append("")

    if any(
        w in results["systems"].get(o, {}).get("workloads", {})
        for o in ours
        for w in {c[0] for c in OURS_COLUMNS}
    ):
        header = ["system", *[c[2] for c in OURS_COLUMNS]]
        rows = [
            [name, *[cell(results, name, w, k) for w, k, _, _ in OURS_COLUMNS]] for name in ours
        ]
        lines += ["Ours only:", "", *markdown_table(header, rows), ""]

    lines.extend(variants.variants_table(results, systems))
    lines.extend(workflow_table(results, systems))
    problems = []
    for name in systems:
        for workload, entry in results["systems"][name]["workloads"].items():
            partial = [r for r in entry.get("reps", []) if r.get("partial")]
            if partial:
                done = ", ".join(f"{r['done']:,}" for r in partial)
                problems.append(
                    f"- {name} / {workload}: did not finish {partial[0]['n']:,} jobs within "
                    f"{results['sizes']['drain_timeout']:g}s in {len(partial)} repetition(s) "
                    f"({done} started): its rates are over the jobs that started"
                )
            if entry.get("error"):
                problems.append(f"- {name} / {workload}: failed: {entry['error']}")
            elif entry.get("unsupported") and workload not in OURS_ONLY:
                problems.append(f"- {name} / {workload}: n/a: {entry['unsupported']}")
    if problems:
        lines.append("Notes:")
        lines.append("")
        lines.extend(problems)
        lines.append("")
    return "\n".join(lines)


# -- machine --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = redis = "?"
    with contextlib.suppress(BenchError):
        pg = psql("SHOW server_version")
    with contextlib.suppress(BenchError):
        m = re.search(r"redis_version:(\S+)", redis_cli("INFO", "server"))
        redis = m.group(1) if m else "?"
    commit = dirty = "?"
    with contextlib.suppress(BenchError, OSError):
        commit = run(["git", "rev-parse", "--short", "HEAD"], timeout=30).stdout.strip()
        changed = run(["git", "status", "--porcelain", "--", "src"], timeout=30).stdout
        dirty = str(len(changed.splitlines()))
    return {
        "git_commit": commit,
        "src_files_changed_since_commit": dirty,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgres": pg,
        "redis": redis,
        "wrk": shutil.which("wrk") is not None,
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# -- profile --------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


# Leaf frames where a thread only waits (py-spy does not always flag these as idle): a thread
# pool's worker waiting for work, an Event.wait with a timeout, the event loop's select.
WAITS = (
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "EpollSelector.select (selectors.py)",
    "_worker (concurrent/futures/thread.py)",
    "Thread._wait_for_tstate_lock (threading.py)",
)


@dataclass
class Profile:
    samples: int = 0
    startup: int = 0  # samples inside imports: process start, left out of the percentages
    waiting: int = 0  # samples whose leaf is a wait (WAITS), left out too
    own: dict[str, int] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # self samples by leaf line
    total: dict[str, int] = field(default_factory=dict)

    def add(self, path: Path) -> None:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            # "function (path/file.py:123)" -> "function (path/file.py)"
            frames = [re.sub(r":\d+\)$", ")", f.strip()) for f in stack.split(";")]
            if any(f.startswith("_find_and_load ") for f in frames):
                self.startup += count
                continue
            if frames[-1] in WAITS:
                self.waiting += count
                continue
            self.samples += count
            self.own[frames[-1]] = self.own.get(frames[-1], 0) + count
            leaf = stack.split(";")[-1].strip()
            self.lines[leaf] = self.lines.get(leaf, 0) + count
            for name in set(frames):
                self.total[name] = self.total.get(name, 0) + count

    def table(self, names: list[str]) -> list[str]:
        lines = ["| function (file) | self % | total % |", "|---|---|---|"]
        for name in names:
            own, tot = self.own.get(name, 0), self.total[name]
            lines.append(
                f"| `{name}` | {100 * own / self.samples:.1f} | {100 * tot / self.samples:.1f} |"
            )
        return lines

    def line_table(self, k: int) -> list[str]:
        lines = ["| line | self % |", "|---|---|"]
        for leaf in sorted(self.lines, key=lambda n: -self.lines[n])[:k]:
            lines.append(f"| `{leaf}` | {100 * self.lines[leaf] / self.samples:.1f} |")
        return lines

    def top_self(self, k: int) -> list[str]:
        return sorted(self.own, key=lambda n: -self.own[n])[:k]

    def top_ours(self, k: int) -> list[str]:
        ours = [n for n in self.total if "jobhandler/" in n]
        return sorted(ours, key=lambda n: -self.total[n])[:k]


def profile(ours_python: str, n: int) -> int:
    """Drain ``n`` no-op jobs on SQLite with our 2 workers, each under py-spy at 1000 Hz, twice:
    sampling every thread that is not idle (where the wall time goes, SQLite's C code and its
    lock waits included), then only the thread holding the GIL (Python CPU time)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rundir = WORK / f"{stamp}-profile"
    rundir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    harness = Harness(QUICK, "profile", ours_python, rundir)
    tools = ensure_venv("tools", harness.log)
    pyspy = str(Path(tools).parent / "py-spy")
    system = BY_NAME["jobhandler-sqlite"]
    harness.prepare(system)
    bindir = Path(ours_python).parent
    text = [
        f"Profile: 2 `jobhandler worker` processes draining {n:,} no-op jobs on SQLite, each "
        "under py-spy at 1000 Hz. Samples taken during imports (process start) and samples of "
        "threads that only wait are left out; percentages are of the remaining samples of both "
        "processes.",
        "",
    ]
    views = [
        ("active threads (wall time of every non-idle thread)", []),
        ("GIL holder only (Python CPU time)", ["--gil"]),
    ]
    for view, (title, flags) in enumerate(views):
        record = rundir / f"profile{view}.rec"
        outputs = [rundir / f"pyspy{view}-worker{i}.txt" for i in range(2)]
        with backend("sqlite", f"profile{view}", rundir) as url:
            env = harness.adapter_env(system, url, record)
            harness.adapter(system, env, "setup", timeout=180)
            harness.adapter(system, env, "fill", n, timeout=600)
            worker = [
                str(bindir / "jobhandler"),
                "worker",
                "--app",
                "bench.adapters.jobhandler_peer:app",
                "--database",
                url,
                "--log-level",
                "warning",
            ]
            records = Records(record)
            spawned = time.time()
            procs = [
                spawn(
                    [
                        pyspy,
                        "record",
                        "--rate",
                        "1000",
                        "--nonblocking",  # do not pause the worker at each sample
                        "--format",
                        "raw",
                        *flags,
                        "--output",
                        str(out),
                        "--",
                        *worker,
                    ],
                    env,
                    rundir / "logs" / f"profile{view}-worker{i}.log",
                )
                for i, out in enumerate(outputs)
            ]
            try:
                deadline = time.monotonic() + 900
                while records.poll() < n:
                    if time.monotonic() > deadline:
                        raise BenchError(f"profile drain: {len(records.first)}/{n} after 900s")
                    time.sleep(0.2)
                elapsed = max(records.first.values()) - spawned
                # Stop the workers, not py-spy: it writes its file when its target exits.
                for proc in procs:
                    for child in _children(proc.pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child, signal.SIGTERM)
                for proc in procs:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(60)
            finally:
                for proc in procs:
                    stop(proc)
        prof = Profile()
        for out in outputs:
            if out.exists():
                prof.add(out)
                shutil.copy(out, RESULTS / f"{stamp}-{out.name}")
        if not prof.samples:
            raise BenchError(f"py-spy recorded nothing ({title}); see {rundir / 'logs'}")
        text += [
            f"### {title}",
            "",
            f"{prof.samples:,} samples ({prof.startup:,} more at start-up and {prof.waiting:,} "
            "in plain waits (thread pool, Event.wait, select) left out); drained in "
            f"{elapsed:.1f}s including worker start ({n / elapsed:,.0f} jobs/s profiled).",
            "",
            "Top functions by self time:",
            "",
            *prof.table(prof.top_self(15)),
            "",
            "Our own functions by inclusive time:",
            "",
            *prof.table(prof.top_ours(12)),
            "",
            "Hottest lines (self time):",
            "",
            *prof.line_table(8),
            "",
        ]
        harness.log(f"profile view {view + 1}/2 done")
    report_text = "\n".join(text)
    (RESULTS / f"{stamp}-profile.md").write_text(report_text + "\n")
    print(report_text)
    return 0


# -- main -----------------------------------------------------------------------------------------


def select(names: str | None, choices: list[str], what: str) -> list[str]:
    if not names:
        return list(choices)
    chosen: list[str] = []
    for pattern in names.split(","):
        matched = [c for c in choices if fnmatch.fnmatch(c, pattern.strip())]
        if not matched:
            raise SystemExit(f"unknown {what} {pattern!r}; choose from: {', '.join(choices)}")
        chosen.extend(m for m in matched if m not in chosen)
    return [c for c in choices if c in chosen]


def cleanup() -> None:
    stop_all()
    for name in list(CREATED_DBS):
        drop_db(name)
    with contextlib.suppress(BenchError, OSError):
        redis_cli("FLUSHDB")


def on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small N, 1 repetition (the default)")
    mode.add_argument("--full", action="store_true", help="the documented sizes and repetitions")
    mode.add_argument("--profile", action="store_true", help="profile our SQLite worker draining")
    mode.add_argument("--list", action="store_true", help="list systems and workloads")
    parser.add_argument("--systems", help="comma-separated names or globs (default: all)")
    parser.add_argument("--workloads", help="comma-separated (default: all)")
    parser.add_argument("--reps", type=int, help="override the repetitions of every workload")
    parser.add_argument(
        "--ours-python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="the interpreter with jobhandler installed (default: the repo's .venv)",
    )
    parser.add_argument("--profile-n", type=int, default=20_000, help="jobs --profile drains")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)

    if args.list:
        for s in SYSTEMS:
            print(f"{s.name:26} venv={s.venv or '(repo .venv)':14} backend={s.backend}")
        print("workloads:", ", ".join(WORKLOADS), f"({', '.join(sorted(OURS_ONLY))}: ours only)")
        return 0
    if args.profile:
        signal.signal(signal.SIGTERM, on_signal)
        try:
            return profile(args.ours_python, args.profile_n)
        finally:
            cleanup()

    sizes = FULL if args.full else QUICK
    if args.reps:
        sizes = Sizes(**{**sizes.__dict__, "reps": {w: args.reps for w in WORKLOADS}})
    systems = [BY_NAME[n] for n in select(args.systems, [s.name for s in SYSTEMS], "system")]
    workloads = select(args.workloads, WORKLOADS, "workload")

    signal.signal(signal.SIGTERM, on_signal)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    mode_name = "full" if args.full else "quick"
    rundir = WORK / f"{stamp}-{mode_name}"
    rundir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    harness = Harness(sizes, mode_name, args.ours_python, rundir)
    results: dict[str, Any] = {
        "mode": mode_name,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "sizes": {k: v for k, v in sizes.__dict__.items()},
        "machine": machine(),
        "order": [s.name for s in systems],
        "systems": {},
    }
    out_json = RESULTS / f"{stamp}-{mode_name}.json"
    out_md = RESULTS / f"{stamp}-{mode_name}.md"
    started = time.monotonic()
    try:
        for system in systems:
            entry: dict[str, Any] = {"workloads": {}}
            results["systems"][system.name] = entry
            t0 = time.monotonic()
            try:
                harness.prepare(system)
                entry["info"] = harness.info[system.name]
            except BenchError as exc:
                harness.log(f"{system.name}: cannot prepare: {exc}")
                entry["error"] = str(exc)
                for w in workloads:
                    entry["workloads"][w] = {"error": f"not prepared: {exc}", "reps": []}
                continue
            for workload in workloads:
                if workload in OURS_ONLY and not system.ours:
                    continue
                if system.only is not None and workload not in system.only:
                    continue
                item: dict[str, Any] = {"reps": []}
                entry["workloads"][workload] = item
                # claim_cost fills one table once and repeats inside its script
                reps = 1 if workload == "claim_cost" else sizes.reps[workload]
                for rep in range(reps):
                    try:
                        if workload in variants.VARIANTS:
                            r = variants.measure(harness, system, workload, rep)
                        else:
                            r = getattr(harness, workload)(system, rep)
                    except Unsupported as exc:
                        if not item["reps"]:
                            item["unsupported"] = str(exc)
                        break
                    except BenchError as exc:
                        item["error"] = str(exc)
                        harness.log(f"{system.name} {workload} #{rep + 1}: FAILED: {exc}")
                        break
                    item["reps"].append(r)
                    shown = {k: round(v, 2) for k, v in r.items() if isinstance(v, float)}
                    harness.log(f"{system.name} {workload} #{rep + 1}: {shown}")
                    stop_all()
                out_json.write_text(json.dumps(results, indent=1))
            entry["seconds"] = round(time.monotonic() - t0, 1)
            harness.log(f"{system.name}: done in {entry['seconds']}s")
    except KeyboardInterrupt:
        harness.log("interrupted: cleaning up")
        results["interrupted"] = True
        for entry in results["systems"].values():
            for item in entry["workloads"].values():
                if not item["reps"] and not item.get("error") and not item.get("unsupported"):
                    item["error"] = "interrupted"
    finally:
        cleanup()
        results["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        results["seconds"] = round(time.monotonic() - started, 1)
        out_json.write_text(json.dumps(results, indent=1))
    table = report(results)
    out_md.write_text(table + "\n")
    if args.output:
        args.output.write_text(table + "\n")
    print(table)
    harness.log(f"results: {out_json.relative_to(ROOT)} and {out_md.name} ({results['seconds']}s)")
    return 1 if results.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
