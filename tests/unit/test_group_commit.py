"""Group commit: concurrent submits share writes, each caller still gets exactly its own jobs."""

from __future__ import annotations

import asyncio

import pytest

from jobhandler.batching import GroupCommit


async def test_concurrent_callers_share_writes_and_get_their_own_results() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)  # a commit takes a while; others queue meanwhile
        return [i * 10 for i in items]

    group = GroupCommit(write)
    results = await asyncio.gather(*(group.submit([n, n + 1000]) for n in range(50)))
    assert results == [[n * 10, (n + 1000) * 10] for n in range(50)]
    assert len(writes) < 50 and sorted(i for w in writes for i in w) == sorted(
        [*range(50), *range(1000, 1050)]
    )


async def test_a_failed_write_fails_every_caller_in_it_and_the_next_ones_still_run() -> None:
    calls = 0

    async def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if "bad" in items:
            raise RuntimeError("disk full")
        return items

    group = GroupCommit(write)
    first = asyncio.ensure_future(group.submit(["a"]))
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(group.submit([x])) for x in ("b", "bad")]
    assert await first == ["a"]
    for future in queued:
        with pytest.raises(RuntimeError, match="disk full"):
            await future
    assert await group.submit(["c"]) == ["c"]
    assert calls == 3
