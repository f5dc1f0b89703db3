"""One real server per module and one real chromium (Debian's, which Playwright drives: it
cannot download its own browsers here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import Server, free_port, test_env

CHROMIUM = os.environ.get("JOBHANDLER_TEST_CHROMIUM", "/usr/bin/chromium")


def start_server(where: Path, **env: str) -> Server:
    """``jobhandler serve`` on a fresh SQLite file: API, dashboard and a worker."""
    settings = test_env(f"sqlite:///{where / 'jobs.db'}", **env)
    return Server(["serve"], settings, where / "serve.log", free_port()).wait_ready()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo app with a 1 s ``reverse``, so a status change is there to be seen."""
    running = start_server(tmp_path_factory.mktemp("dashboard"), JOBHANDLER_DEMO_DELAY="1")
    try:
        yield running
    finally:
        running.stop(timeout=10)


# Module scope, not session: while Playwright's sync API runs, this thread counts as running an
# event loop, so an async test of another module run after it here could not start its own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)")
        pytest.skip(f"no chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()
