"""Group commit: concurrent submits share writes; each gets its own jobs, or its own error."""

from __future__ import annotations

import asyncio

import pytest

from jobhandler.service.group_commit import GroupCommit


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


class Unreachable(Exception):
    """Stands for StoreUnavailable: the one error that fails every member at once."""


async def test_a_failed_merged_write_fails_only_its_bad_member() -> None:
    writes: list[list[str]] = []

    async def write(items: list[str]) -> list[str]:
        writes.append(items)
        await asyncio.sleep(0.01)
        if "bad" in items:
            raise RuntimeError("cannot store bad")
        return [i.upper() for i in items]

    group = GroupCommit(write, fail_all=(Unreachable,))
    first = asyncio.ensure_future(group.submit(["a"]))
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(group.submit([x])) for x in ("b", "bad", "c")]
    assert await first == ["A"]
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert results[0] == ["B"] and results[2] == ["C"]
    assert isinstance(results[1], RuntimeError) and "cannot store bad" in str(results[1])
    # The merged write failed as a whole (one transaction), then each member went alone.
    assert writes == [["a"], ["b", "bad", "c"], ["b"], ["bad"], ["c"]]
    assert await group.submit(["d"]) == ["D"]


async def test_a_lost_store_fails_every_member_of_the_merged_write_at_once() -> None:
    calls = 0

    async def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 2:
            raise Unreachable("store down")
        return items

    group = GroupCommit(write, fail_all=(Unreachable,))
    first = asyncio.ensure_future(group.submit(["a"]))
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(group.submit([x])) for x in ("b", "c")]
    assert await first == ["a"]
    for future in queued:
        with pytest.raises(Unreachable, match="store down"):
            await future
    assert calls == 2  # not written one by one: that would only fail again, slower
    assert await group.submit(["d"]) == ["d"]
