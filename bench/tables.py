"""The report's cells and its per-feature tables: medians of a result file's repetitions.
Standard library only, like bench/run.py; bench/report.py writes the report from them."""

from __future__ import annotations

import statistics
from typing import Any

# (workload, metric, column title, higher is better)
Column = tuple[str, str, str, bool]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows)]


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def values(results: dict[str, Any], system: str, workload: str, metric: str) -> list[float]:
    entry = results["systems"].get(system, {}).get("workloads", {}).get(workload, {})
    out = []
    for rep in entry.get("reps", []):
        v = rep.get(metric)
        if isinstance(v, list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def cell(results: dict[str, Any], system: str, workload: str, metric: str) -> str:
    entry = results["systems"].get(system, {}).get("workloads", {}).get(workload)
    if entry is None:
        return "not run"
    vs = values(results, system, workload, metric)
    if not vs:
        if entry.get("unsupported"):
            return "n/a"
        if entry.get("error"):
            return "failed"
        return "-"
    med = statistics.median(vs)
    if len(vs) == 1:
        return fmt(med)
    return f"{fmt(med)} [{fmt(min(vs))}-{fmt(max(vs))}]"


WORKFLOW_COLUMNS: list[Column] = [
    ("workflow", "plain_s", "N plain jobs, first start to last (s)", False),
    ("workflow", "workflow_s", "root, N, child: root start to child start (s)", False),
    ("workflow", "ratio", "workflow / plain", False),
    ("workflow", "workflow_jobs_per_s", "workflow (jobs/s)", True),
    ("workflow", "last_start_to_child_ms", "last of the N started to child started (ms)", False),
    ("workflow", "fan_in_ms", "last of the N finished to child started (ms)", False),
]


def workflow_table(results: dict[str, Any], systems: list[str]) -> list[str]:
    shown = [s for s in systems if values(results, s, "workflow", "workflow_s")]
    if not shown:
        return []
    n = results["sizes"].get("workflow_n")
    header = ["system", *[c[2] for c in WORKFLOW_COLUMNS]]
    rows = [
        [name, *[cell(results, name, w, k) for w, k, _, _ in WORKFLOW_COLUMNS]] for name in shown
    ]
    title = f"Workflow: a root, N = {n:,} jobs after it, one child after all N:"
    return [title, "", *markdown_table(header, rows), ""]
