"""Job Handler inside an existing FastAPI (or any ASGI) application, sharing its lifespan::

    from contextlib import asynccontextmanager
    from fastapi import FastAPI
    from jobhandler.contrib.fastapi import running
    from jobhandler.http.api import create_app

    @asynccontextmanager
    async def lifespan(api: FastAPI):
        async with running(jobs, settings):  # connected, and a worker in this process
            yield

    api = FastAPI(lifespan=lifespan)
    api.mount("/jobs", create_app(jobs, settings))  # the HTTP API, and its dashboard

A mounted application's own lifespan never runs (Starlette runs only the outer one), so the
outer one connects the App: the mounted API finds it connected. See docs/how-to/fastapi.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from jobhandler.app import App
from jobhandler.settings import Settings
from jobhandler.worker import Worker


@asynccontextmanager
async def running(
    app: App, settings: Settings | None = None, *, worker: bool = True
) -> AsyncIterator[App]:
    """``app`` connected for the block; with ``worker``, a worker runs its jobs meanwhile and
    stops gracefully (``shutdown_timeout``) when the block ends."""
    async with app.connected(settings):
        if not worker:
            yield app
            return
        serving = Worker(app, app.settings)
        run = asyncio.create_task(serving.run(), name="jobhandler-worker")
        try:
            yield app
        finally:
            serving.stop()
            await run
