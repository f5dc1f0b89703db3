"""The executor alone, with no store: what each way a run can end turns into as an Outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from jobhandler import App, JobContext, PermanentFailure, RetryLater, RetryPolicy
from jobhandler.model.jobs import Job, JobStatus, Outcome, Transition
from jobhandler.worker.executor import Executor, Running, StopReason
from jobhandler.worker.runners import Runner

NOW = 1_000_000.0
NO_JITTER = RetryPolicy(base=2.0, jitter=0)


class Order(BaseModel):
    item: str
    qty: int


def build_app() -> App:
    app = App(clock=lambda: NOW)

    @app.task
    async def total(order: Order) -> dict[str, int]:
        return {order.item: order.qty * 2}

    @app.task
    def upper(text: str) -> str:
        return text.upper()

    @app.task(retry=NO_JITTER)
    async def broken(_: None) -> None:
        raise ValueError("nope")

    @app.task
    async def later(_: None) -> None:
        raise RetryLater(7, "busy")

    @app.task
    async def refuses(_: None) -> None:
        raise PermanentFailure("bad input")

    @app.task(retry=NO_JITTER)
    async def slow(_: None) -> None:
        await asyncio.sleep(30)

    @app.task
    def waits(_: None, ctx: JobContext) -> bool:
        return ctx.wait_cancelled(30)

    return app


def claimed(task: str, payload: Any = None, *, attempt: int = 1, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": f"job-{task}",
        "task": task,
        "queue": "default",
        "payload": payload,
        "status": JobStatus.PROCESSING,
        "priority": 0,
        "attempt": attempt,
        "max_attempts": 3,
        "uncounted": 0,
        "timeout": None,
        "run_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
        "worker_id": "w",
    }
    return Job(**{**values, **fields})


def start(app: App, job: Job) -> Running:
    executor = Executor(app.tasks, Runner("tests.worker:none", 0.2, 1), app.clock)
    entry = Running(job, JobContext(job.id, job.task, job.attempt, lambda *_: None))
    entry.run = asyncio.create_task(executor.execute(entry))
    return entry


async def execute(app: App, job: Job) -> Outcome | None:
    return await start(app, job).run


async def test_results_of_async_and_thread_tasks() -> None:
    app = build_app()
    done = await execute(app, claimed("total", {"item": "tea", "qty": 2}))
    assert done == Outcome("job-total", 1, Transition.COMPLETE, result={"tea": 4})
    upper = await execute(app, claimed("upper", "abc", attempt=2))
    assert upper == Outcome("job-upper", 2, Transition.COMPLETE, result="ABC")


async def test_an_error_is_retried_by_the_policy_then_fails_for_good() -> None:
    app = build_app()
    first = await execute(app, claimed("broken"))
    assert first is not None and first.transition is Transition.RETRY_LATER
    assert first.run_at == NOW + 2.0 and first.error == "ValueError: nope"
    assert first.traceback is not None and 'raise ValueError("nope")' in first.traceback
    last = await execute(app, claimed("broken", attempt=3))
    assert last is not None and last.transition is Transition.FAIL and last.run_at is None


async def test_retry_later_and_permanent_failure() -> None:
    app = build_app()
    later = await execute(app, claimed("later"))
    assert later is not None and later.transition is Transition.RETRY_LATER
    assert (later.run_at, later.error) == (NOW + 7, "busy")
    refused = await execute(app, claimed("refuses"))
    assert refused is not None and refused.transition is Transition.FAIL
    assert refused.error == "bad input"


async def test_a_timeout_is_a_failure_retried_by_the_policy() -> None:
    app = build_app()
    started = time.monotonic()
    outcome = await execute(app, claimed("slow", timeout=0.05))
    assert time.monotonic() - started < 5
    assert outcome is not None and outcome.transition is Transition.RETRY_LATER
    assert outcome.error == "timed out after 0.05 s"


async def test_unknown_task_and_bad_payload_fail_without_running() -> None:
    app = build_app()
    unknown = await execute(app, claimed("os.system", "rm -rf /"))
    assert unknown is not None and unknown.transition is Transition.FAIL
    assert unknown.error == "unknown task 'os.system'"
    bad = await execute(app, claimed("total", {"item": "x"}))
    assert bad is not None and bad.transition is Transition.FAIL and "qty" in (bad.error or "")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (StopReason.CANCEL, Outcome("job-waits", 1, Transition.ABORT, error="cancelled")),
        (StopReason.SHUTDOWN, Outcome("job-waits", 1, Transition.RELEASE)),
    ],
)
async def test_a_stopped_thread_run_ends_as_its_reason_says(
    reason: StopReason, expected: Outcome
) -> None:
    entry = start(build_app(), claimed("waits"))
    deadline = time.monotonic() + 5
    while "job-job-waits" not in {t.name for t in threading.enumerate()}:
        assert time.monotonic() < deadline, "the task's thread never started"
        await asyncio.sleep(0.01)
    entry.stop(reason)
    assert await entry.run == expected
    assert entry.ctx.cancelled


async def test_a_lost_run_writes_nothing() -> None:
    entry = start(build_app(), claimed("slow"))
    await asyncio.sleep(0)  # one turn of the loop: the run has started
    entry.stop(StopReason.LOST)
    with pytest.raises(asyncio.CancelledError):
        await entry.run
