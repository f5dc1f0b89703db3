"""Bulk actions by filter: cancel, retry or delete every job a listing filter matches.

One step at a time, each two short statements: a read of the next batch of matching jobs (by
seq, so the walk moves forward and ends however the jobs change meanwhile), then one guarded
write of that batch, through the same state machine guards as the single-job actions. So a
million matches never hold a lock or a transaction long; work another caller does in between
(a worker finishing a job, a user's own cancel) is simply seen by the next guard.
"""

from __future__ import annotations

from dataclasses import replace

from jobhandler.model.jobs import TERMINAL, TRANSITIONS, JobStatus, Transition
from jobhandler.model.records import BulkAction, BulkStep, JobFilter, encode_cursor
from jobhandler.store import rows as r
from jobhandler.store.dialect import Step
from jobhandler.store.queries import Query
from jobhandler.store.resource import Resource
from jobhandler.store.uniqueness import held_keys_step, skipped, unraced

# The statuses each action may change; a job in any other status is left as it is.
BULK_SOURCES: dict[str, frozenset[JobStatus]] = {
    "cancel": TRANSITIONS[Transition.CANCEL].sources | TRANSITIONS[Transition.ABORT].sources,
    "retry": TRANSITIONS[Transition.RETRY].sources,
    "delete": TERMINAL,
}


class Bulk(Resource):
    """A bulk action's steps."""

    async def bulk_step(
        self, action: BulkAction, where: JobFilter, after: int, limit: int, now: float
    ) -> BulkStep:
        sources = BULK_SOURCES[action]
        statuses = where.statuses & sources if where.statuses else sources
        if not statuses or limit <= 0:
            return BulkStep(0, None)
        cursor = encode_cursor(after) if after > 0 else None
        narrowed = replace(where, statuses=frozenset(statuses))
        columns = "seq, id" if action == "retry" else "seq"  # a retry reads who it skipped
        sql, params = r.list_query(narrowed, limit - 1, cursor, True, columns)
        candidates = Step(Query("bulk_candidates", self.dialect.native(sql)), params)
        (found,) = await self.dialect.run([candidates], False)
        seqs = [int(row["seq"]) for row in found.rows]
        if not seqs:
            return BulkStep(0, None)
        batch = {"seqs": self.dialect.array(seqs), "now": now}
        steps = [Step(self.queries[f"bulk_{action}"], batch)]
        if action == "retry":  # which it left as they were, for a held unique key
            steps.append(held_keys_step(self.dialect, [row["id"] for row in found.rows], now))
        notify = self.queries.get(f"notify_bulk_{action}")
        if notify is not None:  # a dialect with a channel tells the workers
            steps.append(Step(notify, batch if action == "cancel" else {}))
        changed, *read = await unraced(lambda: self.dialect.run(steps, True))
        flagged = [row["id"] for row in changed.rows if row["status"] == JobStatus.PROCESSING]
        kept = skipped(read[0]) if action == "retry" else []
        more = len(seqs) >= limit
        return BulkStep(len(changed.rows), seqs[-1] if more else None, flagged, kept)
