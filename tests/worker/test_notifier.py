"""One notifier interface over this process's App and the store's cross-process wake-ups."""

from __future__ import annotations

import asyncio

from jobhandler import App, Settings
from jobhandler.worker.notifier import InProcessNotifier, StoreNotifier, notifier_for


def build_app() -> App:
    app = App()

    @app.task
    async def noop(_: None) -> None:
        return None

    return app


async def test_in_process_submits_and_cancels_are_heard_until_stopped(sqlite_url: str) -> None:
    app = build_app()
    async with app.connected(Settings(database_url=sqlite_url)):
        due = asyncio.Event()
        cancels: list[str] = []
        stop = await InProcessNotifier(app).listen(due.set, cancels.append)
        job = await app.tasks.get("noop").enqueue(None)
        assert due.is_set()  # at once: the submit itself calls back, no polling
        claimed = await app.service.store.claim_jobs(["default"], "w", 1, app.clock(), 30)
        assert [j.id for j in claimed] == [job.id]
        await app.service.jobs.cancel(job.id)
        assert cancels == [job.id]

        await stop()
        due.clear()
        await app.tasks.get("noop").enqueue(None)
        assert not due.is_set()


async def test_submits_from_another_process_are_heard_through_the_store(
    database_url: str,
) -> None:
    here, there = build_app(), build_app()
    settings = Settings(database_url=database_url)
    async with here.connected(settings), there.connected(settings):
        due = asyncio.Event()
        stop = await StoreNotifier(here.service.store).listen(due.set, lambda _: None)
        try:
            await there.tasks.get("noop").enqueue(None)  # another App, its own connections
            await asyncio.wait_for(due.wait(), 10)
        finally:
            await stop()


async def test_the_worker_notifier_hears_both(database_url: str) -> None:
    here, there = build_app(), build_app()
    settings = Settings(database_url=database_url)
    async with here.connected(settings), there.connected(settings):
        due = asyncio.Event()
        stop = await notifier_for(here).listen(due.set, lambda _: None)
        try:
            await here.tasks.get("noop").enqueue(None)
            assert due.is_set()
            due.clear()
            await there.tasks.get("noop").enqueue(None)
            await asyncio.wait_for(due.wait(), 10)
        finally:
            await stop()
