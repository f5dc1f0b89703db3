"""An hour's soak on SQLite and on PostgreSQL (issue #23). Run from the repository root:

    .venv/bin/python bench/soak.py --minutes 60 --store both --json /tmp/soak.json
    .venv/bin/python bench/soak.py --minutes 5 --store both      # the CI version

Each store gets a fresh store (a SQLite file in a temporary directory, or a PostgreSQL database
made here and dropped afterwards), one ``jobhandler serve --no-worker`` and two ``jobhandler
worker`` processes of bench/soak_app.py, as users run them, with pruning retention a twelfth of
the run (at least 60 s) so that pruning runs within it. A client keeps a steady rate (``--rate``
operations a second) of plain submits, submits retried by the worker (RetryLater), submits that
fail once and are retried by the client, submits with a unique key or an Idempotency-Key, delayed
submits cancelled at once and slow jobs cancelled while they run; beside two SSE listeners on
``GET /events``, a dashboard read every 2 s, a cron schedule (every minute) and one every 10 s.

Every job is read back until it is final and checked against what it should have become. Submit
latency is the POST's round trip, pickup latency ``started_at - created_at`` of the plain jobs,
both in the window (5 minutes; 1 minute in runs under 30 minutes) of their submit. RSS of every
process (/proc VmRSS) and the store's size are sampled every 5 s. Exit 1 on any error (a status
not expected, an exception, a process that exits, an SSE stream that ends, a traceback in a log)
or lost job (acknowledged and not final, or gone, after the drain); the growth targets are
reported with pass or fail. ``--store both`` runs the two stores at once, in two processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infra import backend, clean_env, spawn, stop, stop_all
from bench.soak_report import Stats, rss_mb, stamp, store_sizes, table, targets, windows

BIN = Path(sys.executable).parent
APP = "bench.soak_app:app"
DASHBOARD = ["/ui/", "/ui/jobs", "/ui/queues", "/ui/workers", "/ui/schedules", "/ui/tasks"]
# One cycle of operations; the client runs through it at --rate.
MIX = ["ok"] * 12 + ["flaky"] * 2 + ["fail_once"] * 2 + ["unique", "cancel_queued"]
MIX += ["cancel_running", "idempotent"]
FINAL = {"completed", "failed", "cancelled"}
EXPECTED_FINAL = {
    "ok": {"completed"},
    "flaky": {"completed"},
    "fail_once": {"completed"},
    "unique": {"completed"},
    "idempotent": {"completed"},
    "cancel_queued": {"cancelled"},
    "cancel_running": {"cancelled", "completed"},  # a cancel may come after its end
}


class Soak:
    """One store's run: its processes, its client's loops, and what they saw."""

    def __init__(self, kind: str, minutes: float, rate: float, workdir: Path) -> None:
        self.kind, self.duration, self.rate, self.workdir = kind, minutes * 60, rate, workdir
        self.retention = max(60.0, self.duration / 12)
        self.stats = Stats(window=300.0 if minutes >= 30 else 60.0)
        self.pending: dict[str, dict[str, Any]] = {}  # acknowledged, not yet seen final
        self.seen: dict[str, dict[str, Any]] = {}  # final states the SSE watcher saw, to settle
        self.fallback = min(15.0, self.retention / 3)  # read back a job not seen final by then
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.submitting = True
        self.stopping = False
        self.recent: list[str] = []
        self.periodic: dict[str, int] = {"cron_tick": 0, "every_tick": 0}

    # -- processes --------------------------------------------------------------------------

    def start(self, url: str, port: int) -> None:
        retention = f"{self.retention:g}"
        env = clean_env(
            {
                "JOBHANDLER_KEEP_COMPLETED": retention,
                "JOBHANDLER_KEEP_FAILED": retention,
                "JOBHANDLER_KEEP_IDEMPOTENCY_KEYS": retention,
                "JOBHANDLER_PRUNE_INTERVAL": f"{max(5.0, self.retention / 5):g}",
                "JOBHANDLER_LOG_LEVEL": "warning",
            }
        )
        common = ["--app", APP, "--database", url]
        serve = [str(BIN / "jobhandler"), "serve", "--no-worker", *common, "--port", str(port)]
        self.procs["serve"] = spawn(serve, env, self.workdir / "serve.log")
        deadline = time.monotonic() + 60
        while not self._ready(port):
            if self.procs["serve"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start; see {self.workdir}/serve.log")
            time.sleep(0.1)
        for i in (1, 2):
            argv = [str(BIN / "jobhandler"), "worker", *common]
            self.procs[f"worker{i}"] = spawn(argv, env, self.workdir / f"worker{i}.log")
        while len(httpx.get(f"http://127.0.0.1:{port}/workers", timeout=10).json()) < 2:
            if time.monotonic() > deadline + 60:  # the first window measures a steady state
                raise RuntimeError(f"the workers did not start; see {self.workdir}")
            time.sleep(0.2)

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # -- the client's loops -----------------------------------------------------------------

    async def submit(self, client: httpx.AsyncClient, n: int) -> None:
        kind = MIX[n % len(MIX)]
        mode = {"flaky": "flaky", "fail_once": "fail_once", "cancel_running": "slow"}
        body: dict[str, Any] = {"task": "work", "payload": {"mode": mode.get(kind, "ok")}}
        headers = {}
        if kind == "unique":
            body.update(unique_key=f"u{(n // len(MIX)) % 10}", unique_for=self.retention / 2)
        if kind == "cancel_queued":
            body["delay"] = 3600
        if kind == "idempotent":
            headers["Idempotency-Key"] = f"idem-{n}"
        job = await self._post_job(client, body, headers, kind)
        if job is None:
            return
        if kind == "idempotent":  # the same key again answers with the same job
            again = await self._post_job(client, body, headers, "idempotent_repeat")
            if again is not None and again["id"] != job["id"]:
                self.stats.error("idempotency", f"{job['id']} then {again['id']}")
        if kind.startswith("cancel"):
            await asyncio.sleep(0.0 if kind == "cancel_queued" else 1.0)
            await self._call(client, "POST", f"/jobs/{job['id']}/cancel", "cancel", {200, 202, 409})
        self.recent = [job["id"], *self.recent[:19]]
        if job["_status"] == 201:  # a unique key's repeat answers 200 with a job already known
            due = time.monotonic() + self.fallback
            entry = {"kind": kind, "slot": self.stats.slot(), "due": due, "retried": False}
            self.pending[job["id"]] = entry

    async def _post_job(
        self, client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], kind: str
    ) -> dict[str, Any] | None:
        started = time.perf_counter()
        job = await self._call(
            client, "POST", "/jobs", kind, {200, 201}, json=body, headers=headers
        )
        if job is not None:
            self.stats.submit_ms[self.stats.slot()].append(1000 * (time.perf_counter() - started))
        return job

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, op: str, ok: set[int], **kw: Any
    ) -> dict[str, Any] | None:
        """One request; a status outside ``ok`` or an exception is an error. Returns its JSON."""
        self.stats.ops[op] += 1
        try:
            response = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.stats.error(f"{op}: {type(exc).__name__}", f"{method} {path}: {exc!r}")
            return None
        if response.status_code not in ok:
            self.stats.error(f"{op}: HTTP {response.status_code}", f"{path}: {response.text}")
            return None
        is_json = response.headers.get("content-type", "").startswith("application/json")
        found = response.json() if is_json and response.content else {}
        return {**found, "_status": response.status_code} if isinstance(found, dict) else {}

    async def submitter(self, client: httpx.AsyncClient) -> None:
        """Operations at a steady rate, each its own task: a slow answer does not slow the rate."""
        tasks: set[asyncio.Task[None]] = set()
        start, n = time.monotonic(), 0
        while self.stats.now() < self.duration:
            task = asyncio.create_task(self.submit(client, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))
        if tasks:
            await asyncio.gather(*tasks)
        self.submitting = False

    async def checker(self, client: httpx.AsyncClient) -> None:
        """Settle every job the SSE watcher saw final; read back those it did not (a stream
        that broke may have missed them) once they are ``fallback`` seconds old."""
        while self.submitting or self.pending:
            now = time.monotonic()
            ready = [i for i in self.pending if i in self.seen]  # settled at once, not in turn
            await asyncio.gather(*(self.settle(client, i, self.seen.pop(i)) for i in ready))
            due = [i for i, p in self.pending.items() if p["due"] <= now][:20]
            await asyncio.gather(*(self.read_back(client, job_id) for job_id in due))
            for job_id in [i for i, job in self.seen.items() if job["t"] < now - 120]:
                del self.seen[job_id]  # a schedule's job, or a unique key's repeat
            if self.stopping:
                return
            await asyncio.sleep(0.5)

    async def read_back(self, client: httpx.AsyncClient, job_id: str) -> None:
        entry = self.pending[job_id]
        self.stats.ops["read back"] += 1
        job = await self._call(client, "GET", f"/jobs/{job_id}", "read", {200, 404})
        entry["due"] = time.monotonic() + self.fallback
        if job is None or job_id not in self.pending:
            return
        if job["_status"] == 404:  # gone before it was seen final
            self.stats.lost.append(job_id)
            self.stats.error("gone", f"{entry['kind']} job {job_id} answered 404")
            del self.pending[job_id]
        elif job["status"] in FINAL:
            await self.settle(client, job_id, job)

    async def settle(self, client: httpx.AsyncClient, job_id: str, job: dict[str, Any]) -> None:
        """A job seen final: retry it if it is one to retry, else check it ended as it should."""
        entry, status = self.pending[job_id], job["status"]
        if entry["kind"] == "fail_once" and status == "failed" and not entry["retried"]:
            entry.update(retried=True, due=time.monotonic() + self.fallback)
            await self._call(client, "POST", f"/jobs/{job_id}/retry", "retry", {200})
            return
        del self.pending[job_id]
        if status not in EXPECTED_FINAL[entry["kind"]]:
            self.stats.error("final status", f"{entry['kind']} job {job_id} ended {status}")
        elif entry["kind"] == "ok" and job.get("started_at"):
            pickup = stamp(job["started_at"]) - stamp(job["created_at"])
            self.stats.pickup_ms[entry["slot"]].append(1000 * pickup)

    async def listener(self, client: httpx.AsyncClient, watches: bool) -> None:
        """An SSE client on ``GET /events``. The one that ``watches`` keeps each job's final
        state for the checker, and counts the schedules' runs."""
        while not self.stopping:
            try:
                timeout = httpx.Timeout(10, read=None)
                async with client.stream("GET", "/events", timeout=timeout) as r:
                    async for line in r.aiter_lines():
                        if watches and line.startswith("data:"):
                            self.watch(json.loads(line[5:]))
                        if self.stopping:
                            return
                    self.stats.error("sse", f"the stream ended: HTTP {r.status_code}")
            except httpx.HTTPError as exc:
                if not self.stopping:
                    self.stats.error("sse", repr(exc))
            await asyncio.sleep(1.0)

    def watch(self, job: dict[str, Any]) -> None:
        if job["status"] not in FINAL:
            return
        if job["task"] in self.periodic and job["status"] == "completed":
            self.periodic[job["task"]] += 1
        keep = ("status", "started_at", "created_at")
        self.seen[job["id"]] = {"t": time.monotonic(), **{k: job.get(k) for k in keep}}

    async def dashboard(self, client: httpx.AsyncClient) -> None:
        n = 0
        while self.submitting:
            path = DASHBOARD[n % len(DASHBOARD)]
            if n % (len(DASHBOARD) + 1) == len(DASHBOARD) and self.recent:
                path = f"/ui/jobs/{self.recent[0]}"
            await self._call(client, "GET", path, "dashboard", {200})
            n += 1
            await asyncio.sleep(2.0)

    async def sampler(self, url: str) -> None:
        """RSS of every process and the store's size every 5 s; a process that exits: an error."""
        while not self.stopping:
            rss = {name: rss_mb(p.pid) for name, p in self.procs.items()}
            rss["client"] = rss_mb(os.getpid())
            for name, p in self.procs.items():
                if p.poll() is not None:
                    self.stats.error("process exited", f"{name} exited {p.returncode}")
                    raise RuntimeError(f"{name} exited")
            sizes = await asyncio.to_thread(store_sizes, url)
            self.stats.samples.append({"t": self.stats.now(), "rss": rss, **sizes})
            await asyncio.sleep(5.0)

    # -- the run ----------------------------------------------------------------------------

    async def drive(self, url: str, port: int) -> None:
        # Idle connections dropped before the server's 5 s keep-alive closes them (a race).
        limits = httpx.Limits(max_connections=64, keepalive_expiry=2.0)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            self.stats.t0 = time.monotonic()
            background = [
                asyncio.create_task(self.sampler(url)),
                *(asyncio.create_task(self.listener(client, i == 0)) for i in range(2)),
            ]
            loops = [self.submitter(client), self.checker(client), self.dashboard(client)]
            drain = asyncio.gather(*loops)
            # The drain: every acknowledged job has 120 s after the last submit to be final.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drain, self.duration + 120)
            self.stopping = True
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        for job_id, entry in self.pending.items():
            self.stats.lost.append(job_id)
            self.stats.error("not final", f"{entry['kind']} job {job_id} after the drain")

    def log_errors(self) -> None:
        for name in self.procs:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            for line in text.splitlines():
                if "Traceback" in line or " ERROR " in line or "CRITICAL" in line:
                    self.stats.error(f"log {name}", line)

    def result(self) -> dict[str, Any]:
        rows = windows(self.stats, self.duration)
        settle = 2 * self.retention + max(5.0, self.retention / 5) + self.stats.window
        expected = {"cron_tick": self.duration / 60, "every_tick": self.duration / 10}
        for task, count in self.periodic.items():
            if count < 0.8 * expected[task] - 1:
                self.stats.error(
                    "periodic", f"{task} completed {count}, about {expected[task]:.0f} due"
                )
        return {
            "config": {
                "minutes": self.duration / 60,
                "rate_per_s": self.rate,
                "retention_s": self.retention,
                "window_s": self.stats.window,
            },
            "windows": rows,
            "targets": targets(self.stats, rows, min(settle, self.duration - self.stats.window)),
            "periodic_completed": self.periodic,
            "ops": dict(self.stats.ops),
            "errors": dict(self.stats.errors),
            "error_examples": self.stats.examples,
            "lost": self.stats.lost,
            "samples": self.stats.samples,
        }


def soak_one(kind: str, minutes: float, rate: float) -> dict[str, Any]:
    from bench.large_store import free_port

    with tempfile.TemporaryDirectory(prefix=f"soak-{kind}-") as tmp:
        workdir, port = Path(tmp), free_port()
        soak = Soak(kind, minutes, rate, workdir)
        with backend(kind, "soak", workdir) as url:
            try:
                soak.start(url, port)
                asyncio.run(soak.drive(url, port))
            finally:
                for proc in soak.procs.values():
                    stop(proc, grace=40.0)
            soak.log_errors()
            return soak.result()


def run_both(args: argparse.Namespace) -> int:
    """The two stores at once, each in a process of its own; their tables in turn."""
    outs = {k: Path(tempfile.mkstemp(prefix=f"soak-{k}-")[1]) for k in ("sqlite", "postgres")}
    flags = f"--minutes {args.minutes} --rate {args.rate} --quiet".split()
    procs = {
        k: subprocess.Popen([sys.executable, __file__, "--store", k, *flags, "--json", str(out)])
        for k, out in outs.items()
    }
    codes = {k: p.wait() for k, p in procs.items()}
    results = {}
    for k, out in outs.items():
        text = out.read_text()
        out.unlink()
        if not text:
            print(f"{k}: no result (exit {codes[k]})")
            continue
        results[k] = json.loads(text)[k]
        print(table(k, results[k]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return max(codes.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rate", type=float, default=20.0, help="operations a second")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.store == "both":
        return run_both(args)
    try:
        result = soak_one(args.store, args.minutes, args.rate)
    finally:
        stop_all()
    if args.json:
        Path(args.json).write_text(json.dumps({args.store: result}, indent=1))
    if not args.quiet:
        print(table(args.store, result))
    return 1 if result["errors"] or result["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
