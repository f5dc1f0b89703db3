"""--profile: py-spy over our 2 workers draining no-op jobs on SQLite, and the tables of where
their samples fall. Standard library only, like bench/run.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.harness import Harness
from bench.infra import RESULTS, WORK, backend, ensure_venv, spawn, stop
from bench.records import Records
from bench.systems import BY_NAME, QUICK, System


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
        outputs = [rundir / f"pyspy{view}-worker{i}.txt" for i in range(2)]
        elapsed = drain_under_pyspy(harness, system, pyspy, view, flags, outputs, n)
        prof = Profile()
        for out in outputs:
            if out.exists():
                prof.add(out)
                shutil.copy(out, RESULTS / f"{stamp}-{out.name}")
        if not prof.samples:
            raise BenchError(f"py-spy recorded nothing ({title}); see {rundir / 'logs'}")
        text += view_text(title, prof, n, elapsed)
        harness.log(f"profile view {view + 1}/2 done")
    report_text = "\n".join(text)
    (RESULTS / f"{stamp}-profile.md").write_text(report_text + "\n")
    print(report_text)
    return 0


def drain_under_pyspy(
    harness: Harness,
    system: System,
    pyspy: str,
    view: int,
    flags: list[str],
    outputs: list[Path],
    n: int,
) -> float:
    """One view: ``n`` jobs filled into a fresh SQLite file, drained by 2 workers each under
    py-spy writing to its ``outputs`` file; returns the seconds from spawn to the last start."""
    rundir = harness.rundir
    bindir = Path(harness.ours_python).parent
    record = rundir / f"profile{view}.rec"
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
                pyspy_argv(pyspy, flags, out, worker),
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
    return elapsed


def pyspy_argv(pyspy: str, flags: list[str], out: Path, worker: list[str]) -> list[str]:
    return [
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
    ]


def view_text(title: str, prof: Profile, n: int, elapsed: float) -> list[str]:
    return [
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
