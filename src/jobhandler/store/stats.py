"""Queue statistics and throughput, cheap however many jobs the store holds.

Counts are not counted from the jobs table per call: migration 009's triggers keep them in
``job_counts`` as jobs move (one row per queue and status on SQLite; on PostgreSQL, appended
deltas, so concurrent claims never wait on one hot row, folded together by ``compact_counts``
now and then). When each queue's longest-waiting job became due is a skip scan of the claim
index; throughput per minute reads the index on ``(finished_at, status)`` only.
"""

from __future__ import annotations

import time

from jobhandler.model.records import QueueStats, Throughput
from jobhandler.store.dialect import Dialect, Step
from jobhandler.store.resource import Resource

# Fold the deltas together once a read sums more pieces than this, or after this many
# outcomes written by one store (so a busy store stays small even when nobody reads).
COMPACT_PIECES = 500
COMPACT_EVERY = 2000
WAITING = ("queued", "scheduled")


class Stats(Resource):
    """Counts by queue and status, and throughput; it folds the counters' deltas now and then."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        self.finished_since_compact = 0  # outcomes this store wrote since it last folded

    async def queue_stats(self, now: float | None = None) -> list[QueueStats]:
        at = time.time() if now is None else now
        done = await self.one("job_counts", {})
        counts: dict[str, dict[str, int]] = {}
        pieces = 0
        for row in done.rows:
            pieces += row["pieces"]
            if row["n"]:
                counts.setdefault(row["queue"], {})[row["status"]] = int(row["n"])
        if pieces > COMPACT_PIECES:
            await self.compact_counts()
        waiting = sorted(q for q, c in counts.items() if any(c.get(s) for s in WAITING))
        oldest: dict[str, float | None] = {}
        if waiting:
            steps = [Step(self.queries["oldest_waiting"], {"queue": q}) for q in waiting]
            for queue, found in zip(waiting, await self.dialect.run(steps, False), strict=True):
                first = found.rows[0]["oldest"] if found.rows else None
                oldest[queue] = first if first is not None and first <= at else None
        return [QueueStats(q, c, oldest.get(q)) for q, c in sorted(counts.items())]

    async def throughput(self, since: float) -> list[Throughput]:
        done = await self.one("throughput", {"since": since})
        minutes: dict[float, dict[str, int]] = {}
        for row in done.rows:
            minutes.setdefault(float(row["minute"]), {})[row["status"]] = int(row["n"])
        return [Throughput(m, c) for m, c in sorted(minutes.items())]

    async def compact_counts(self) -> None:
        """Fold the counters' deltas (a dialect that keeps one row each has nothing to fold)."""
        query = self.queries.get("compact_counts")
        if query is not None:
            self.finished_since_compact = 0
            await self.dialect.run([Step(query, {})], True)

    async def counted_finishes(self, finished: int) -> None:
        """After outcomes were written: fold the deltas they added once enough piled up."""
        self.finished_since_compact += finished
        if self.finished_since_compact >= COMPACT_EVERY:
            await self.compact_counts()
