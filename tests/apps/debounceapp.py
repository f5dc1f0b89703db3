"""A task to debounce (tests/acceptance/test_debounce_servers.py): it answers with its payload."""

from __future__ import annotations

from jobhandler import App

app = App()


@app.task(max_attempts=1)
async def search(text: str) -> str:
    return text
