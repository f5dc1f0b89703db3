"""The sync API: an App used from threads and scripts that have no event loop of their own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jobhandler import App, JobStatus, SyncUnavailable
from jobhandler.testing import JobHandlerTesting, temporary_settings


def make_app() -> App:
    app = App()

    @app.task
    def double(n: int) -> int:
        return n * 2

    return app


def test_threads_enqueue_through_one_connection(tmp_path: Path) -> None:
    app = make_app()
    double = app.tasks.get("double")
    with app.connected_sync(temporary_settings(tmp_path)), ThreadPoolExecutor(8) as pool:
        handles = list(pool.map(double.enqueue_sync, range(200)))
        assert len({h.id for h in handles}) == 200
        stored = app.run_sync(app.service.jobs.page(limit=1000)).jobs
        assert sorted(j.payload for j in stored) == list(range(200))
        JobHandlerTesting(app).drain_sync()
        results = list(pool.map(lambda h: h.get_result_sync(timeout=5), handles))
        assert results == [n * 2 for n in range(200)]
    with pytest.raises(SyncUnavailable, match="not connected"):  # closed with the block
        double.enqueue_sync(1)


def test_a_call_before_connecting_says_how_to_connect() -> None:
    double = make_app().tasks.get("double")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" left behind
        with pytest.raises(SyncUnavailable, match=r"use `with app.connected_sync\(settings\):`"):
            double.enqueue_sync(1)


def test_connecting_twice_is_refused(tmp_path: Path) -> None:
    app = make_app()
    with (
        app.connected_sync(temporary_settings(tmp_path)),
        pytest.raises(SyncUnavailable, match="connected already"),
    ):
        app.sync.connect(temporary_settings(tmp_path))


async def test_an_async_app_takes_sync_calls_from_threads_not_from_its_loop(
    tmp_path: Path,
) -> None:
    app = make_app()
    double = app.tasks.get("double")
    async with app.connected(temporary_settings(tmp_path)):
        with pytest.raises(SyncUnavailable, match="await the async method instead"):
            double.enqueue_sync(1)  # would block the loop it needs
        job = await asyncio.to_thread(double.enqueue_sync, 2)  # a sync task's thread, say
        assert (await app.service.jobs.get(job.id)).status is JobStatus.QUEUED


def test_a_script_connects_once_and_is_closed_at_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    script = textwrap.dedent(f"""
        from jobhandler import App, Settings

        app = App()

        @app.task
        def double(n: int) -> int:
            return n * 2

        app.sync.connect(Settings(database_url={url!r}))
        print(double.enqueue_sync(21).id)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    app = make_app()
    with app.connected_sync(temporary_settings(tmp_path, database_url=url)):
        assert app.run_sync(app.service.jobs.get(done.stdout.strip())).payload == 21
