"""The pytest plugin (entry point ``pytest11``): fixtures for tests of code that uses Job Handler.

Say which App your code uses, in the pytest configuration::

    [tool.pytest.ini_options]
    jobhandler_app = "myproject.jobs:app"

(or override the ``jobhandler_unconnected_app`` fixture to return it), then:

- ``jobhandler_settings``: a fresh SQLite store in the test's ``tmp_path``; override it to use
  another store.
- ``jobhandler_app``: that App, connected to that store for the test (on its sync thread, so
  the sync API works: ``task.enqueue_sync(...)``, ``app.run_sync(...)``).
- ``jobhandler``: a ``jobhandler.testing.JobHandlerTesting`` watching it: ``drain_sync()``,
  ``assert_enqueued(...)``, ``enqueued``; ``@pytest.mark.jobhandler(eager=True)`` runs each job
  as it is enqueued.

Async tests use ``async with jobhandler.testing.connected(app) as jobs:`` on their own loop.
Nothing is imported from the package until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from jobhandler.app import App
    from jobhandler.settings import Settings
    from jobhandler.testing import JobHandlerTesting


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("jobhandler_app", "the App the code under test uses, as module:attribute")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "jobhandler(eager=False): options of the jobhandler fixture's test kit"
    )


@pytest.fixture
def jobhandler_settings(tmp_path: Path) -> Settings:
    from jobhandler.testing import temporary_settings

    return temporary_settings(tmp_path)


@pytest.fixture
def jobhandler_unconnected_app(request: pytest.FixtureRequest) -> App:
    from jobhandler.app import load_app

    ref = str(request.config.getini("jobhandler_app") or "")
    if not ref:
        pytest.fail(
            "set jobhandler_app = 'module:attribute' in the pytest configuration, or override"
            " the jobhandler_unconnected_app fixture to return your App",
            pytrace=False,
        )
    return load_app(ref)


@pytest.fixture
def jobhandler_app(jobhandler_unconnected_app: App, jobhandler_settings: Settings) -> Iterator[App]:
    with jobhandler_unconnected_app.connected_sync(jobhandler_settings) as app:
        yield app


@pytest.fixture
def jobhandler(request: pytest.FixtureRequest, jobhandler_app: App) -> Iterator[JobHandlerTesting]:
    from jobhandler.testing import JobHandlerTesting

    marker = request.node.get_closest_marker("jobhandler")
    kit = JobHandlerTesting(jobhandler_app, eager=bool(marker and marker.kwargs.get("eager")))
    try:
        yield kit
    finally:
        kit.close()
