"""The App the workflow page's browser tests serve: ``gated`` runs until a file named by its
payload appears in ``GATEAPP_DIR``, so a test decides when a job finishes and can watch the
page change as it does."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jobhandler import App

app = App()


@app.task
async def gated(gate: str) -> str:
    opened = Path(os.environ["GATEAPP_DIR"]) / gate
    # The gate is a file another process makes: there is no event of this loop to wait on.
    while not opened.exists():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return gate
