"""What bench/soak.py measures and how it reports it: latencies per window, samples of RSS and
store size, errors and lost jobs, and the targets of issue #23 judged on them."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.records import percentile

RSS_TARGET = 0.10  # growth after the first window
P99_TARGET = 0.20  # drift of a window's p99 from the first window after warm-up
STORE_TARGET = 0.10  # growth once pruning has reached its steady state


def stamp(text: str) -> float:
    """An RFC 3339 time of the API as epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def store_sizes(url: str) -> dict[str, float]:
    """The store's size, ``store_mb``: the SQLite file with its WAL, or PostgreSQL's
    ``pg_database_size``; and on SQLite the WAL's share, ``wal_mb`` (the WAL keeps the size of
    its largest burst between checkpoints, the file its largest set of pages)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        sizes = {
            s: Path(path + s).stat().st_size / 1e6
            for s in ("", "-wal", "-shm")
            if Path(path + s).exists()
        }
        return {"store_mb": sum(sizes.values()), "wal_mb": sizes.get("-wal", 0.0)}
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return {"store_mb": int(row[0]) / 1e6 if row else 0.0}


def rss_mb(pid: int) -> float | None:
    """VmRSS of a live process, in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Stats:
    """Everything one store's soak observed, keyed by window (seconds since start // window)."""

    window: float
    t0: float = field(default_factory=time.monotonic)
    submit_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    pickup_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    ops: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def slot(self, at: float | None = None) -> int:
        return int((self.now() if at is None else at) // self.window)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 30:
            self.examples.append(f"{self.now():.0f}s {kind}: {detail[:300]}")


def _q(values: list[float], q: float) -> float | None:
    return percentile(sorted(values), q) if values else None


def _sample_at(samples: list[dict[str, Any]], t: float) -> dict[str, Any]:
    """The last sample taken at or before ``t`` (the first one if none was)."""
    before = [s for s in samples if s["t"] <= t]
    return before[-1] if before else samples[0]


def windows(stats: Stats, duration: float) -> list[dict[str, Any]]:
    rows = []
    for w in range(max(1, round(duration / stats.window))):
        end = _sample_at(stats.samples, (w + 1) * stats.window)
        sub, pick = stats.submit_ms.get(w, []), stats.pickup_ms.get(w, [])
        rows.append(
            {
                "window": w,
                "from_min": w * stats.window / 60,
                "submits": len(sub),
                "submit_p50_ms": _q(sub, 50),
                "submit_p99_ms": _q(sub, 99),
                "pickups": len(pick),
                "pickup_p50_ms": _q(pick, 50),
                "pickup_p99_ms": _q(pick, 99),
                "rss_mb": end["rss"],
                "store_mb": end["store_mb"],
            }
        )
    return rows


def _growth(first: float | None, last: float | None) -> float | None:
    return None if not first or last is None else last / first - 1


def targets(stats: Stats, rows: list[dict[str, Any]], settle_s: float) -> dict[str, Any]:
    """Issue #23's targets: RSS after the first window, p99 of the second window against the
    last, the store's size once pruning has settled (``settle_s``) against the end."""
    base = _sample_at(stats.samples, stats.window)
    end = stats.samples[-1]
    rss = {p: _growth(base["rss"].get(p), end["rss"].get(p)) for p in end["rss"]}
    ref, last = rows[min(1, len(rows) - 1)], rows[-1]
    drift = {k: _growth(ref[f"{k}_p99_ms"], last[f"{k}_p99_ms"]) for k in ("submit", "pickup")}
    settled = _sample_at(stats.samples, settle_s)
    store = _growth(settled["store_mb"], end["store_mb"])
    return {
        "rss_growth": rss,
        # The client keeps every latency it measured: its growth is the harness's, not judged.
        "rss_ok": all(g is not None and g < RSS_TARGET for p, g in rss.items() if p != "client"),
        "p99_drift": drift,
        "p99_ok": all(d is not None and d < P99_TARGET for d in drift.values()),
        "store_growth": store,
        "store_settled_at_min": settled["t"] / 60,
        "store_ok": store is not None and store < STORE_TARGET,
    }


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def table(kind: str, result: dict[str, Any]) -> str:
    rows, t = result["windows"], result["targets"]
    names = list(rows[0]["rss_mb"]) if rows else []
    head = ["from min", "submits", "submit p50/p99 ms", "pickup p50/p99 ms"]
    head += [f"RSS {n} MB" for n in names] + ["store MB"]
    lines = [f"== {kind}: " + ", ".join(f"{k} {v}" for k, v in result["config"].items())]
    lines.append(" | ".join(head))
    for r in rows:
        cells = [
            f"{r['from_min']:g}",
            str(r["submits"]),
            f"{_ms(r['submit_p50_ms'])} / {_ms(r['submit_p99_ms'])}",
            f"{_ms(r['pickup_p50_ms'])} / {_ms(r['pickup_p99_ms'])}",
            *(_ms(r["rss_mb"].get(n)) for n in names),
            f"{r['store_mb']:.1f}",
        ]
        lines.append(" | ".join(cells))
    rss = ", ".join(f"{n} {_pct(g)}" for n, g in t["rss_growth"].items())
    drift = ", ".join(f"{n} {_pct(g)}" for n, g in t["p99_drift"].items())
    verdict = {True: "pass", False: "MISS"}
    lines.append(f"RSS growth after the first window: {rss} ({verdict[t['rss_ok']]})")
    lines.append(f"p99 drift, second window to last: {drift} ({verdict[t['p99_ok']]})")
    lines.append(
        f"store size from {t['store_settled_at_min']:.1f} min to the end: "
        f"{_pct(t['store_growth'])} ({verdict[t['store_ok']]})"
    )
    if wal := [x["wal_mb"] for x in result["samples"] if "wal_mb" in x]:
        lines.append(f"of which the WAL: {wal[-1]:.1f} MB at the end, {max(wal):.1f} MB at most")
    if result["config"]["window_s"] < 300:
        lines.append("(too short to judge growth: only errors and lost jobs fail this run)")
    lines.append(f"operations: {dict(result['ops'])}")
    lines.append(f"errors: {sum(result['errors'].values())} {dict(result['errors'])}")
    lines.append(f"lost: {len(result['lost'])}")
    lines.extend(f"  {e}" for e in result["error_examples"][:10])
    return "\n".join(lines)
