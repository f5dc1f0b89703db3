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
import signal
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import variants
from bench.errors import BenchError, Unsupported
from bench.harness import Harness
from bench.infra import CREATED_DBS, RESULTS, ROOT, WORK, drop_db, redis_cli, stop_all
from bench.profiling import profile
from bench.report import machine, report
from bench.systems import BY_NAME, FULL, OURS_ONLY, QUICK, SYSTEMS, WORKLOADS, Sizes, System


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    return parser.parse_args(argv)


def print_choices() -> None:
    for s in SYSTEMS:
        print(f"{s.name:26} venv={s.venv or '(repo .venv)':14} backend={s.backend}")
    print("workloads:", ", ".join(WORKLOADS), f"({', '.join(sorted(OURS_ONLY))}: ours only)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print_choices()
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
            run_system(harness, system, workloads, sizes, results, out_json)
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


def run_system(
    harness: Harness,
    system: System,
    workloads: list[str],
    sizes: Sizes,
    results: dict[str, Any],
    out_json: Path,
) -> None:
    """Every chosen workload the system takes part in, each repetition in turn; the results
    file rewritten after each workload."""
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
        return
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
            if not measure(harness, system, workload, rep, item):
                break
        out_json.write_text(json.dumps(results, indent=1))
    entry["seconds"] = round(time.monotonic() - t0, 1)
    harness.log(f"{system.name}: done in {entry['seconds']}s")


def measure(
    harness: Harness, system: System, workload: str, rep: int, item: dict[str, Any]
) -> bool:
    """One repetition into ``item``; False when the workload stops here (unsupported, failed)."""
    try:
        if workload in variants.VARIANTS:
            r = variants.measure(harness, system, workload, rep)
        else:
            r = getattr(harness, workload)(system, rep)
    except Unsupported as exc:
        if not item["reps"]:
            item["unsupported"] = str(exc)
        return False
    except BenchError as exc:
        item["error"] = str(exc)
        harness.log(f"{system.name} {workload} #{rep + 1}: FAILED: {exc}")
        return False
    item["reps"].append(r)
    shown = {k: round(v, 2) for k, v in r.items() if isinstance(v, float)}
    harness.log(f"{system.name} {workload} #{rep + 1}: {shown}")
    stop_all()
    return True


if __name__ == "__main__":
    sys.exit(main())
