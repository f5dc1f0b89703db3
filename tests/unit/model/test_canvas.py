"""The workflow builder and Celery-style canvas, without a store: graphs as they are built,
what is refused before anything is stored, and mypy's view of the typed calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobhandler import (
    App,
    InvalidOptions,
    InvalidPayload,
    InvalidWorkflow,
    JobContext,
    JobHandlerError,
    chain,
    chord,
    group,
)
from tests.typing.check import mypy_errors

SAMPLE = Path(__file__).parents[2] / "typing" / "workflows_sample.py"
app = App()


@app.task
async def fetch(url: str) -> str:
    return url


@app.task
async def merge(_: None, ctx: JobContext) -> int:
    return len(ctx.parent_results)


def shape(nodes: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {key: node.after for key, node in nodes.items()}


def test_nodes_get_readable_unique_keys_and_their_parents() -> None:
    wf = app.workflow("crawl")
    a, b = wf.add(fetch, "a"), wf.add(fetch, "b", key="fetch-2x")
    c = wf.add(fetch, "c")
    m = wf.add(merge, None, after=[a, b, c, a])
    assert [a.key, b.key, c.key, m.key] == ["fetch", "fetch-2x", "fetch-2", "merge"]
    assert m.after == ("fetch", "fetch-2x", "fetch-2")  # a parent named twice counts once
    ordered = wf.to_nodes(now=1.0)
    assert [n.key for n in ordered][-1] == "merge"
    assert {n.job.task for n in ordered} == {"fetch", "merge"}


def test_refused_before_anything_is_stored() -> None:
    wf, other = app.workflow("w"), app.workflow("other")
    a = wf.add(fetch, "a", key="a")
    with pytest.raises(InvalidWorkflow, match="used twice"):
        wf.add(fetch, "again", key="a")
    with pytest.raises(InvalidWorkflow, match="not a node of this workflow"):
        wf.add(merge, None, after=[other.add(fetch, "x")])
    with pytest.raises(InvalidWorkflow, match="unique_for"):
        wf.add(fetch, "u", unique_key="k", unique_for=5.0)  # type: ignore[call-overload]
    with pytest.raises(InvalidWorkflow, match="on_parent_failure"):
        wf.add(merge, None, after=[a], on_parent_failure="skip")  # type: ignore[call-overload]
    with pytest.raises(InvalidPayload):
        wf.add(fetch, 5)  # type: ignore[call-overload]
    with pytest.raises(InvalidOptions):
        wf.add(fetch, "p", priority=10_000)
    with pytest.raises(InvalidWorkflow, match="1 to 200"):
        wf.add(fetch, "k", key="")
    with pytest.raises(InvalidWorkflow, match="at least one job"):
        app.workflow("empty").to_nodes(1.0)
    with pytest.raises(InvalidWorkflow):
        app.workflow("x" * 201)
    assert list(wf.nodes) == ["a"]  # nothing half-added


def test_options_reach_the_jobs() -> None:
    wf = app.workflow("w")
    wf.add(fetch, "a", queue="io", priority=7, run_at=50.0, unique_key="once", max_attempts=2)
    (node,) = wf.to_nodes(now=1.0)
    job = node.job
    assert (job.queue, job.priority, job.run_at, job.unique_key, job.max_attempts) == (
        "io",
        7,
        50.0,
        "once",
        2,
    )
    assert job.unique_until is None


def test_chain_group_and_chord_make_one_graph() -> None:
    flow = chain(
        fetch.s("a", key="first"),
        group(fetch.s(u) for u in "xy"),
        chord([fetch.s("p"), fetch.s("q")], merge.s(on_parent_failure="run")),
    )
    wf = flow.workflow()
    assert wf.name == "chain(first, group(fetch, fetch), chord(group(fetch, fetch), merge))"
    assert shape(wf.nodes) == {
        "first": (),
        "fetch": ("first",),
        "fetch-2": ("first",),
        "fetch-3": ("fetch", "fetch-2"),
        "fetch-4": ("fetch", "fetch-2"),
        "merge": ("fetch-3", "fetch-4"),
    }
    assert wf.nodes["merge"].on_parent_failure == "run"
    # An empty group passes what came before through to what follows.
    assert shape(chain(fetch.s("a"), group(), merge.s()).workflow("e").nodes) == {
        "fetch": (),
        "merge": ("fetch",),
    }


def test_a_canvas_needs_tasks_of_one_app() -> None:
    other = App()

    @other.task
    async def elsewhere(_: None) -> None:
        return None

    with pytest.raises(ValueError, match="one App"):
        chain(fetch.s("a"), elsewhere.s()).workflow()
    with pytest.raises(ValueError, match="at least one task"):
        group().workflow()


async def test_spawn_outside_a_worker_says_so() -> None:
    ctx = JobContext("j", "merge", 1, lambda *_: None)
    assert dict(ctx.parent_results) == {}
    with pytest.raises(JobHandlerError, match="only in a job that a worker runs"):
        await ctx.spawn(fetch, "a")


def test_mypy_flags_the_wrong_workflow_calls_and_only_those() -> None:
    reported, expected, out = mypy_errors(SAMPLE)
    assert reported == expected, out
