"""Debounce (issue #21 item 3): a submit while the key's job waits replaces its payload and
pushes its start back, up to debounce_max_wait after the first submit; the answer names the one
job. On both stores, racing submitters included."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import pytest

from jobhandler import App, JobStatus
from jobhandler.model.errors import InvalidOptions
from jobhandler.model.records import JobFilter
from jobhandler.settings import Settings

NOW = 1_900_000_000.0


def search_app(clock: list[float]) -> App:
    app = App(clock=lambda: clock[0])

    @app.task
    async def search(text: str) -> str:
        return text

    return app


async def test_each_submit_replaces_the_payload_and_pushes_the_start_up_to_max_wait(
    database_url: str,
) -> None:
    clock = [NOW]
    app = search_app(clock)
    search = app.tasks.get("search")
    async with app.connected(Settings(database_url=database_url)):
        opts: dict[str, Any] = {"unique_key": "q", "debounce": 10, "debounce_max_wait": 25}
        first = await search.enqueue("a", **opts)
        assert not first.duplicate and first.status is JobStatus.SCHEDULED
        assert first.run_at == NOW + 10
        for at, text, start in [(5, "ab", 15), (12, "abc", 22), (20, "abcd", 25)]:
            clock[0] = NOW + at
            again = await search.enqueue(text, **opts)
            assert again.duplicate and again.id == first.id
            assert again.payload == text and again.run_at == NOW + start  # capped at 25
            assert again.status is JobStatus.SCHEDULED
        clock[0] = NOW + 30  # due: a submit after the cap makes it due now, not later
        late = await search.enqueue("abcde", **opts)
        assert late.id == first.id and late.run_at == NOW + 25
        assert late.status is JobStatus.QUEUED

        store = app.service.store
        (claimed,) = await store.claim_jobs(["default"], "w1", 1, NOW + 30, 30)
        assert claimed.id == first.id and claimed.payload == "abcde"
        running = await search.enqueue("too late", **opts)  # it started: kept as it is
        assert running.id == first.id and running.payload == "abcde"
        assert running.status is JobStatus.PROCESSING
        jobs = (await store.list_jobs(JobFilter(), 10, None)).jobs
        assert [j.id for j in jobs] == [first.id]


async def test_a_batch_with_one_key_leaves_one_job_with_the_last_payload(
    database_url: str,
) -> None:
    clock = [NOW]
    app = search_app(clock)
    search = app.tasks.get("search")
    async with app.connected(Settings(database_url=database_url)):
        handles = await search.enqueue_many(["a", "ab", "abc"], unique_key="q", debounce=5)
        assert len({h.id for h in handles}) == 1 and handles[-1].payload == "abc"
        stored = await app.service.jobs.get(handles[0].id)
        assert stored.payload == "abc" and stored.run_at == NOW + 5


async def test_racing_submitters_leave_one_job_with_the_last_committed_payload(
    database_url: str,
) -> None:
    clock = [NOW]
    apps = [search_app(clock) for _ in range(4)]  # each its own connections to the store
    settings = Settings(database_url=database_url)
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.connected(settings))

        async def submitter(n: int) -> list[Any]:
            search = apps[n].tasks.get("search")
            return [
                await search.enqueue(f"{n}-{i}", unique_key="q", debounce=60) for i in range(15)
            ]

        answers = [h for hs in await asyncio.gather(*map(submitter, range(4))) for h in hs]
        assert len({h.id for h in answers}) == 1
        # Each answer is the job as its own transaction left it: with its payload.
        assert [h.payload for h in answers] == [f"{n}-{i}" for n in range(4) for i in range(15)]
        assert sum(not h.duplicate for h in answers) == 1
        jobs = (await apps[0].service.store.list_jobs(JobFilter(), 10, None)).jobs
        assert len(jobs) == 1
        # The submit that committed last is some submitter's last one (each submits in turn):
        # its payload stays, never an earlier one overwritten late.
        assert jobs[0].payload in {f"{n}-14" for n in range(4)}
        final = await apps[0].tasks.get("search").enqueue("final", unique_key="q", debounce=60)
        assert final.id == jobs[0].id and final.payload == "final"


@pytest.mark.parametrize(
    "options",
    [
        {"debounce": 5},  # no unique_key
        {"unique_key": "k", "debounce": 0},
        {"unique_key": "k", "debounce": -1},
        {"unique_key": "k", "debounce": math.nan},
        {"unique_key": "k", "debounce": math.inf},
        {"unique_key": "k", "debounce": 1e300},
        {"unique_key": "k", "debounce": True},
        {"unique_key": "k", "debounce": "5"},
        {"unique_key": "k", "debounce_max_wait": 5},  # without debounce
        {"unique_key": "k", "debounce": 5, "debounce_max_wait": 4},  # less than debounce
        {"unique_key": "k", "debounce": 5, "debounce_max_wait": math.nan},
        {"unique_key": "k", "debounce": 5, "unique_for": 10},
        {"unique_key": "k", "debounce": 5, "delay": 10},
    ],
)
async def test_bad_debounce_options_are_refused(sqlite_url: str, options: dict[str, Any]) -> None:
    app = search_app([NOW])
    async with app.connected(Settings(database_url=sqlite_url)):
        with pytest.raises(InvalidOptions):
            await app.tasks.get("search").enqueue("x", **options)
