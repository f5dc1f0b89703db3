"""Bulk actions by filter: cancel, retry or delete every job a listing filter matches.

The work goes in steps of ``BATCH`` jobs, each a read and one short guarded write (see
store/bulk.py), so a million matches neither hold the store's write lock for long nor make a
request time out on a store other writers are waiting for. Jobs that change between the
steps are judged by the state machine's guards as they stand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, get_args

from jobhandler.store.base import BulkAction, JobFilter

if TYPE_CHECKING:
    from jobhandler.store import Store

BATCH = 1000  # jobs per write transaction
ACTIONS: tuple[str, ...] = get_args(BulkAction)


class BulkOwner(Protocol):
    """What a bulk action needs from its App (declared here: the App imports this module)."""

    clock: Callable[[], float]

    @property
    def store(self) -> Store: ...

    def notify_finished(self, job_ids: Iterable[str] | None = None) -> None: ...


async def run_bulk(app: BulkOwner, action: BulkAction, where: JobFilter) -> int:
    """Apply ``action`` to every job ``where`` matches that was submitted before this call;
    how many jobs it changed.

    A running job a cancel reaches is only flagged (its worker stops it and writes the
    outcome); it counts as changed.
    """
    # Only jobs submitted before it started: the walk would otherwise reach new jobs too.
    started = app.clock()
    if where.created_before is None or where.created_before > started:
        where = replace(where, created_before=started)
    total, after = 0, 0
    while True:
        step = await app.store.bulk_step(action, where, after, BATCH, app.clock())
        total += step.changed
        if action == "cancel" and step.changed:
            app.notify_finished()  # requests waiting on any of those jobs look again
        if step.next_after is None:
            return total
        after = step.next_after
