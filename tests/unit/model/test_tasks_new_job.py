"""Task.new_job and new_jobs: each field from the job's options or the task's, in its place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jobhandler import App, Settings
from jobhandler.model.jobs import NewJob
from jobhandler.model.options import NO_OPTIONS, JobOptions

NOW = 1_800_000_000.0


def _app() -> App:
    app = App()

    @app.task(queue="mail", priority=3, max_attempts=5, timeout=7.5)
    def send(to: str) -> None:
        """Never run."""

    return app


def _fields(job: NewJob) -> dict[str, object]:
    found = dataclasses.asdict(job)
    del found["id"]
    return found


def test_without_options_a_job_takes_the_tasks_own() -> None:
    task = _app().tasks.get("send")
    expected = {
        "task": "send",
        "queue": "mail",
        "payload": "ada",
        "priority": 3,
        "max_attempts": 5,
        "timeout": 7.5,
        "run_at": NOW,
        "unique_key": None,
        "unique_until": None,
        "trace_context": None,
        "concurrency_key": None,
    }
    assert _fields(task.new_job("ada", NOW)) == expected
    assert _fields(task.new_job("ada", NOW, NO_OPTIONS)) == expected
    assert [_fields(j) for j in task.new_jobs(["ada", "ada"], NOW)] == [expected, expected]


def test_every_option_lands_in_its_own_field() -> None:
    task = _app().tasks.get("send")
    options = JobOptions(
        queue="urgent",
        priority=-2,
        max_attempts=9,
        timeout=1.5,
        delay=60,
        unique_key="k",
        unique_for=30,
        concurrency_key="acme",
    )
    expected = {
        "task": "send",
        "queue": "urgent",
        "payload": "bob",
        "priority": -2,
        "max_attempts": 9,
        "timeout": 1.5,
        "run_at": NOW + 60,
        "unique_key": "k",
        "unique_until": NOW + 30,
        "trace_context": None,
        "concurrency_key": "acme",
    }
    assert _fields(task.new_job("bob", NOW, options)) == expected
    (one,) = task.new_jobs(["bob"], NOW, options)
    assert _fields(one) == expected
    ids = {j.id for j in task.new_jobs(["bob"] * 50, NOW, options)}
    assert len(ids) == 50


def test_priority_zero_overrides_and_run_at_is_taken_as_given() -> None:
    task = _app().tasks.get("send")
    job = task.new_job("x", NOW, JobOptions(priority=0, run_at=NOW + 5))
    assert (job.priority, job.run_at, job.queue) == (0, NOW + 5, "mail")


async def test_json_limits_follow_the_settings_the_app_is_connected_with(tmp_path: Path) -> None:
    app = _app()
    task = app.tasks.get("send")
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with app.connected(Settings(database_url=url, max_json_depth=5, max_payload_bytes=100)):
        assert (task.json_limits().max_depth, task.json_limits().max_bytes) == (5, 100)
    async with app.connected(Settings(database_url=url, max_json_depth=9, max_payload_bytes=200)):
        assert (task.json_limits().max_depth, task.json_limits().max_bytes) == (9, 200)
