"""Bulk actions by filter: cancel, retry or delete every job a listing filter matches.

The work goes in steps of ``BATCH`` jobs, each a read and one short guarded write (see
store/bulk.py), so a million matches neither hold the store's write lock for long nor make a
request time out on a store other writers are waiting for. Jobs that change between the
steps are judged by the state machine's guards as they stand, and a retry by the unique keys as
they are held then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, get_args

from jobhandler.model.records import SKIPPED_SHOWN, BulkAction, JobFilter

if TYPE_CHECKING:
    from jobhandler.store import Store

BATCH = 1000  # jobs per write transaction
ACTIONS: tuple[str, ...] = get_args(BulkAction)


@dataclass(frozen=True, slots=True)
class BulkDone:
    """What a bulk action did: how many jobs it changed (a running job a cancel reached:
    flagged), and for a retry the jobs it skipped because another job holds their unique key
    (id and holder; the first ``SKIPPED_SHOWN`` of them) and how many it skipped in all."""

    count: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_count: int = 0


async def run_bulk(
    store: Store,
    clock: Callable[[], float],
    action: BulkAction,
    where: JobFilter,
    finished: Callable[[Iterable[str] | None], None],
) -> BulkDone:
    """Apply ``action`` to every job ``where`` matches that was submitted before this call.

    A running job a cancel reaches is only flagged (its worker stops it and writes the
    outcome); it counts as changed. A retry skips a job whose unique key another job holds
    (as the one-job retry refuses it) and goes on with the others. ``finished`` is told
    after each step of a cancel (requests waiting on those jobs look again).
    """
    # Only jobs submitted before it started: the walk would otherwise reach new jobs too.
    started = clock()
    if where.created_before is None or where.created_before > started:
        where = replace(where, created_before=started)
    total, after, skipped_count = 0, 0, 0
    skipped: list[tuple[str, str]] = []
    while True:
        step = await store.bulk_step(action, where, after, BATCH, clock())
        total += step.changed
        # Bounded: a million skipped jobs must not make an answer of a million entries.
        skipped += step.skipped[: SKIPPED_SHOWN - len(skipped)]
        skipped_count += len(step.skipped)
        if action == "cancel" and step.changed:
            finished(None)
        if step.next_after is None:
            return BulkDone(total, skipped, skipped_count)
        after = step.next_after
