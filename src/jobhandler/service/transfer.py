"""Copying every job from one store into another: the move from SQLite to PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.records import JobFilter
from jobhandler.model.workflows import WorkflowFilter
from jobhandler.store import Store


class TransferRefused(JobHandlerError):
    """The copy would not be safe or not be whole; nothing was copied."""


async def copy_jobs(
    source: Store,
    target: Store,
    now: float,
    live_within: float,
    on_progress: Callable[[int], None] | None = None,
    batch: int = 1000,
) -> int:
    """Copy all jobs, oldest first, keeping ids, statuses, attempts and results.

    Refuses while a worker heartbeated on the source in the last ``live_within`` seconds (it
    could still change jobs the copy has already read), or when the target holds jobs already.
    """
    live = [w.id for w in await source.list_workers() if w.last_seen_at >= now - live_within]
    if live:
        raise TransferRefused(
            f"workers are live on the source ({', '.join(live)}): stop them first"
        )
    if (await target.list_jobs(JobFilter(), 1, None)).jobs:
        raise TransferRefused("the target already holds jobs: copy into an empty store")
    copied, cursor = 0, None
    while True:
        page = await source.list_jobs(JobFilter(), batch, cursor, oldest_first=True)
        if page.jobs:
            await target.import_jobs(page.jobs)
            copied += len(page.jobs)
            if on_progress is not None:
                on_progress(copied)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    await _copy_workflows(source, target, batch)
    return copied


async def _copy_workflows(source: Store, target: Store, batch: int) -> None:
    """The workflows, then the edges between their jobs, rebuilt from each job's ``after``
    once every job is there (a spawned child is newer than the jobs that wait for it)."""
    cursor = None
    while True:
        page = await source.page_workflows(WorkflowFilter(), batch, cursor)
        if page.workflows:
            await target.import_workflows(page.workflows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    await target.rebuild_edges()
