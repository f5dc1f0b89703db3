"""The report: the markdown table of a run's results (medians over the repetitions), and the
machine it ran on. Standard library only, like bench/run.py."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import statistics
from pathlib import Path
from typing import Any

from bench import variants
from bench.errors import BenchError
from bench.infra import psql, redis_cli, run
from bench.systems import BY_NAME, FSYNC, MEMORY, OURS_ONLY, PROCESS
from bench.tables import cell, fmt, markdown_table, values, workflow_table

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
    lines = heading(results)
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
        lines.extend(peer_ratios(results, ours, peers))
    lines.extend(ours_only_table(results, ours))
    lines.extend(variants.variants_table(results, systems))
    lines.extend(workflow_table(results, systems))
    lines.extend(notes(results, systems))
    return "\n".join(lines)


def heading(results: dict[str, Any]) -> list[str]:
    """The run's mode, machine and commit, and what the table's cells and durabilities mean."""
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
    return lines


def peer_ratios(results: dict[str, Any], ours: list[str], peers: list[str]) -> list[str]:
    """Ours over the best peer of each column."""
    lines = []
    lines.append(
        "Ours ÷ best peer (medians). Throughput: above 1 means ours is faster. "
        "Latency: below 1 means ours picks up sooner."
    )
    lines.append("")
    lines.append("| workload | best peer | " + " | ".join(f"{o} ÷ best" for o in ours) + " |")
    lines.append("|---|---|" + "---|" * len(ours))
    for workload, metric, title, higher in COLUMNS:
        medians = {
            p: statistics.median(vs) for p in peers if (vs := values(results, p, workload, metric))
        }
        if not medians:
            continue
        best = (max if higher else min)(medians, key=lambda p: medians[p])
        ratios = []
        for o in ours:
            vs = values(results, o, workload, metric)
            ratios.append(f"{statistics.median(vs) / medians[best]:.2f}" if vs else "-")
        lines.append(f"| {title} | {best} ({fmt(medians[best])}) | " + " | ".join(ratios) + " |")
    lines.append("")
    return lines


def ours_only_table(results: dict[str, Any], ours: list[str]) -> list[str]:
    lines: list[str] = []
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
    return lines


def notes(results: dict[str, Any], systems: list[str]) -> list[str]:
    """Partial drains, failures, and the workloads a peer has no API for."""
    lines = []
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
    return lines


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
