"""The dashboard's throughput chart: the last hour's finished jobs as sixty bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobhandler.model.records import Throughput

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the throughput chart, scaled for the SVG the template draws."""

    x: int
    minute: float
    completed: int
    failed: int
    completed_height: float
    failed_height: float


CHART_HEIGHT = 100.0
FAILED = ("failed", "cancelled")


def chart(minutes: Sequence[Throughput], now: float) -> list[Bar]:
    """Sixty bars, one per minute of the last hour (empty minutes included), oldest first."""
    start = (now // 60) * 60 - 59 * 60
    by_minute = {float(m.minute): m.counts for m in minutes}
    counts = []
    for i in range(60):
        found = by_minute.get(start + i * 60, {})
        failed = sum(int(found.get(s, 0)) for s in FAILED)
        counts.append((start + i * 60, int(found.get("completed", 0)), failed))
    top = max((c + f for _, c, f in counts), default=0) or 1
    return [
        Bar(
            i,
            minute,
            c,
            f,
            round(c / top * CHART_HEIGHT, 2),
            round(f / top * CHART_HEIGHT, 2),
        )
        for i, (minute, c, f) in enumerate(counts)
    ]
