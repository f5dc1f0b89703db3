"""A real (minimal) Django project whose ``@task`` functions run on a real Job Handler worker,
with results read back through Django's own API."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Process, test_env, wait_until

pytest.importorskip("django")
REPO = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "tests.contrib.djproject.settings"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Django set up in this process on the project's settings; yields the store's URL."""
    import django

    url = f"sqlite:///{tmp_path_factory.mktemp('django') / 'jobs.db'}"
    os.environ["DJPROJECT_DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    django.setup()
    yield url
    from jobhandler.contrib.django import app

    app.sync.close()


def finished(result: Any) -> Callable[[], bool]:
    def check() -> bool:
        result.refresh()
        return bool(result.is_finished)

    return check


def test_django_tasks_run_on_a_worker(project: str, spawn: Callable[..., Process]) -> None:
    from tests.contrib.djproject import tasks

    added = tasks.add.enqueue(2, 3)
    assert added.status == "READY" and added.args == [2, 3]
    env = test_env(
        project,
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        DJPROJECT_DATABASE_URL=project,
        PYTHONPATH=str(REPO),
    )
    spawn(["worker", "--app", "jobhandler.contrib.django.worker:app"], env)
    reported = tasks.report.enqueue("sales", rows=3)
    attempt = tasks.attempt_number.enqueue()
    broken = tasks.broken.enqueue("no data today")
    for result in (added, reported, attempt, broken):
        wait_until(finished(result), 30)

    assert added.status == "SUCCESSFUL" and added.return_value == 5
    assert tasks.add.get_result(added.id).return_value == 5
    # An async task on its own queue, with a priority; a dict's key order is kept.
    assert reported.return_value == {"name": "sales", "rows": 3, "columns": ["z", "a"]}
    assert list(reported.return_value) == ["name", "rows", "columns"]
    assert attempt.return_value == 1
    assert broken.status == "FAILED"
    (error,) = broken.errors
    assert error.exception_class_path == "tests.contrib.djproject.tasks.ReportError"
    assert error.exception_class is tasks.ReportError
    assert "no data today" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = broken.return_value


def test_an_unknown_result_id_does_not_exist(project: str) -> None:
    from jobhandler.contrib.django.compat import TaskResultDoesNotExist
    from tests.contrib.djproject import tasks

    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("no-such-job")


def test_a_task_on_a_queue_the_backend_does_not_serve_is_refused(project: str) -> None:
    from jobhandler.contrib.django.compat import InvalidTask
    from tests.contrib.djproject import tasks

    with pytest.raises(InvalidTask, match="not valid"):
        tasks.add.using(queue_name="elsewhere").enqueue(1, 2)


def test_queue_priority_and_run_after_become_the_jobs(project: str) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from jobhandler.contrib.django import app
    from tests.contrib.djproject import tasks

    later = datetime.now(UTC) + timedelta(hours=1)
    deferred = tasks.add.using(run_after=later, priority=-5).enqueue(1, b=2)
    job = app.run_sync(app.service.jobs.get(deferred.id))
    assert job.task == "tests.contrib.djproject.tasks.add"
    assert job.payload == {"args": [1], "kwargs": {"b": 2}}
    assert job.status.value == "scheduled" and abs(job.run_at - later.timestamp()) < 0.001
    assert job.priority == -5 and deferred.status == "READY"
    reported = asyncio.run(tasks.report.aenqueue("q", rows=1))  # Django's async API too
    job = app.run_sync(app.service.jobs.get(reported.id))
    assert (job.queue, job.priority) == ("reports", 10)
    # TASK_OPTIONS: the job's concurrency key from its "name" keyword (docs/tenants.md).
    assert job.concurrency_key is None  # given by position, not by keyword
    named = tasks.report.enqueue(name="acme", rows=2)
    assert app.run_sync(app.service.jobs.get(named.id)).concurrency_key == "acme"


def test_a_result_is_read_from_any_thread(project: str) -> None:
    """Django makes a backend object per thread: each must know every task."""
    import threading

    from tests.contrib.djproject import tasks

    added = tasks.add.enqueue(4, 5)
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.append(tasks.add.get_result(added.id)))
    reader.start()
    reader.join(30)
    assert seen and seen[0].id == added.id and seen[0].args == [4, 5]


def test_per_task_options_and_a_status_that_follows_the_retries(
    project: str, spawn: Callable[..., Process]
) -> None:
    from jobhandler.contrib.django import app
    from tests.contrib.djproject import tasks

    env = test_env(
        project,
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        DJPROJECT_DATABASE_URL=project,
        PYTHONPATH=str(REPO),
    )
    spawn(["worker", "--app", "jobhandler.contrib.django.worker:app"], env)
    flaky = tasks.flaky.enqueue()
    statuses: set[str] = set()

    def done() -> bool:
        flaky.refresh()
        statuses.add(str(flaky.status))
        return bool(flaky.is_finished)

    wait_until(done, 30, interval=0.02)
    assert flaky.return_value == 2
    # Between its failed first attempt and the retry it was RUNNING, never READY again.
    assert "RUNNING" in statuses and statuses <= {"READY", "RUNNING", "SUCCESSFUL", "SUCCEEDED"}
    job = app.run_sync(app.service.jobs.get(flaky.id))
    assert (job.max_attempts, job.timeout) == (2, 30)
    broken = tasks.broken.enqueue("once")
    wait_until(finished(broken), 30)
    assert app.run_sync(app.service.jobs.get(broken.id)).attempt == 1  # MAX_ATTEMPTS 1


def test_results_under_a_threaded_server_and_in_another_process(
    project: str, spawn: Callable[..., Process], tmp_path: Path
) -> None:
    """Django's own runserver (a thread per request): enqueue in one request, read it in others
    and from a second server process that never enqueued anything."""
    import subprocess
    import sys

    import httpx

    from tests.conftest import free_port

    env = test_env(
        project,
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        DJPROJECT_DATABASE_URL=project,
        PYTHONPATH=str(REPO),
    )
    spawn(["worker", "--app", "jobhandler.contrib.django.worker:app"], env)
    servers = []
    try:
        for n in range(2):
            port = free_port()
            log = (tmp_path / f"runserver-{n}.log").open("wb")
            argv = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"]
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            servers.append((proc, f"http://127.0.0.1:{port}"))
        for _, url in servers:
            wait_until(lambda url=url: _answers(f"{url}/result/none"), 60)
        first, second = (url for _, url in servers)
        job_id = httpx.get(f"{first}/add", params={"a": 2, "b": 3}, timeout=30).json()["id"]

        def succeeded(url: str) -> bool:
            shown = httpx.get(f"{url}/result/{job_id}", timeout=30)
            assert shown.status_code == 200, shown.text
            return bool(shown.json()["return_value"] == 5)

        wait_until(lambda: succeeded(first), 30)
        assert succeeded(second)  # another process, which never imported the tasks module
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(10)


def _answers(url: str) -> bool:
    import httpx

    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


def test_a_task_enqueued_in_an_atomic_block_commits_or_rolls_back_with_it(project: str) -> None:
    """Django's database is the store's file here (djproject/settings.py): the job is written
    on Django's connection, in its transaction."""
    from django.db import transaction

    from jobhandler.contrib.django import app
    from tests.contrib.djproject import tasks

    def stored(result_id: str) -> bool:
        return app.run_sync(app.service.store.get_job(result_id)) is not None

    class SignupFailed(Exception):
        pass

    with pytest.raises(SignupFailed), transaction.atomic():
        dropped = tasks.add.enqueue(1, 1)
        raise SignupFailed
    assert not stored(dropped.id), "a job outlived the rollback of its transaction"
    with transaction.atomic():
        kept = tasks.add.enqueue(2, 2)
        assert not stored(kept.id), "seen before its transaction committed"
    assert stored(kept.id)
    # Outside an atomic block, as before: committed at once.
    assert stored(tasks.add.enqueue(3, 3).id)
