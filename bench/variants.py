"""The drain's variants, ours only: the plain drain's N no-op jobs (bench/run.py, ``drain_n``)
through one feature each, drained by the same 2 workers and timed the same way (steady jobs/s,
from the start records between the 10th and 90th percentile), each on a fresh store.

- ``drain_keyed``: the N jobs spread evenly over ``drain_keys`` concurrency keys, with no key
  limit declared: what fair (round-robin) claiming between keys costs a claim, against the
  unkeyed claim. A limit that binds would measure the limit, not the claim, and declaring one
  on the queue would change the plain drain's claims too.
- ``drain_tx``: ``noop_tx`` jobs, whose task writes one row of its own table in the store's
  database in the transaction that completes the job (``ctx.transaction()``): that connection,
  the write and its commit, against the worker's batched completions. At most
  ``TX_CONNECTIONS`` (bench/adapters/jobhandler_peer.py) transactions per worker are open at
  once, as each was a connection of its own before the task connection pools (kept since, for
  comparable figures).

The report shows each beside the plain drain of the same system in the same run (the
workloads run one after another for each system), with the ratio of the medians.
"""

from __future__ import annotations

import statistics
from typing import Any, Protocol

from bench.tables import cell, markdown_table, values

KEYED, TX = "drain_keyed", "drain_tx"
VARIANTS = {KEYED: "keyed", TX: "tx"}  # workload: the adapter's ``fill_variant`` name
STEADY = "steady_jobs_per_s"


class Drains(Protocol):
    """What the variants use of bench/harness.py's Harness."""

    sizes: Any

    def tag(self, system: Any, workload: str, rep: int) -> str: ...

    def drain_jobs(
        self, system: Any, tag: str, n: int, fill: tuple[object, ...]
    ) -> dict[str, Any]: ...


def measure(harness: Drains, system: Any, workload: str, rep: int) -> dict[str, Any]:
    """One repetition of a variant: the plain drain with another fill."""
    n, keys = harness.sizes.drain_n, harness.sizes.drain_keys
    tag = harness.tag(system, workload, rep)
    result = harness.drain_jobs(system, tag, n, ("variant-fill", VARIANTS[workload], n, keys))
    if workload == KEYED:
        result["keys"] = keys
    return result


def ratio(results: dict[str, Any], system: str, workload: str) -> str:
    """The variant's median steady rate over the plain drain's, in the same run."""
    variant, plain = (
        values(results, system, workload, STEADY),
        values(results, system, "drain", STEADY),
    )
    if not variant or not plain:
        return "-"
    return f"{statistics.median(variant) / statistics.median(plain):.2f}"


def variants_table(results: dict[str, Any], systems: list[str]) -> list[str]:
    shown = [s for s in systems if any(values(results, s, w, STEADY) for w in VARIANTS)]
    if not shown:
        return []
    sizes = results["sizes"]
    header = [
        "system",
        "plain drain, steady (jobs/s)",
        f"keyed: {sizes.get('drain_keys', '?')} keys, no limit (jobs/s)",
        "keyed / plain",
        "ctx.transaction(): one row each (jobs/s)",
        "transactional / plain",
    ]
    rows = [
        [
            name,
            cell(results, name, "drain", STEADY),
            cell(results, name, KEYED, STEADY),
            ratio(results, name, KEYED),
            cell(results, name, TX, STEADY),
            ratio(results, name, TX),
        ]
        for name in shown
    ]
    title = (
        f"The drain's variants: the same N = {sizes['drain_n']:,} no-op jobs, a fresh store "
        "each, medians of the steady rate:"
    )
    lines = [title, "", *markdown_table(header, rows), ""]
    repeats = [
        f"{name} / {w}: {sum(values(results, name, w, 'duplicates')):,.0f} jobs started again"
        for name in shown
        for w in VARIANTS
        if sum(values(results, name, w, "duplicates"))
    ]
    return [*lines, *([f"Repeats: {'; '.join(repeats)}.", ""] if repeats else [])]
