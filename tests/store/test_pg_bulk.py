"""A big submit (by COPY, postgres/wire.copy_jobs) stores exactly what the small submit's insert
stores, value for value, and refuses what it refuses."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from jobhandler.model.jobs import Job, NewJob
from jobhandler.model.records import JobFilter
from jobhandler.store.dialect import Refused
from jobhandler.store.postgres.dialect import PostgresStore
from jobhandler.store.postgres.wire import COPY_FROM

NOW = 1_900_000_000.0
BIG = COPY_FROM + 6
# Text COPY must escape (its separators, its escape, its NULL marker), or must not touch.
TEXTS = ["tab\there", "line\nnew", "cr\rhere", "back\\slash", "\\N", "N", "", " ünï € 𝄞 "]
FLOATS = [None, 0.1 + 0.2, 1e-300, 2.5e300, -0.0, 0.0, 7.0, NOW + 0.123456789]


def awkward(i: int) -> NewJob:
    text = TEXTS[i % len(TEXTS)]
    return NewJob(
        id=str(uuid.uuid4()),
        task=f"t{text}",
        queue=text or "default",
        payload={"text": text, "i": i} if i % 3 else text,
        priority=i % 5 - 2,
        max_attempts=1 + i % 4,
        timeout=FLOATS[i % len(FLOATS)],
        run_at=NOW + i % 2 * 60.5,
        trace_context=None if i % 2 else text,
    )


def comparable(job: Job) -> dict[str, object]:
    fields = dataclasses.asdict(job)
    del fields["id"]
    return fields


async def stored(pg: PostgresStore) -> list[Job]:
    page = await pg.list_jobs(JobFilter(), 1000, None, oldest_first=True)
    return page.jobs


async def test_copy_stores_what_the_small_insert_stores(pg: PostgresStore) -> None:
    big = [awkward(i) for i in range(BIG)]
    small = [dataclasses.replace(job, id=str(uuid.uuid4())) for job in big]
    await pg.insert_jobs(big, NOW)
    for start in range(0, BIG, COPY_FROM // 2):  # below COPY_FROM: the unnest insert
        await pg.insert_jobs(small[start : start + COPY_FROM // 2], NOW)
    jobs = await stored(pg)
    assert [j.id for j in jobs] == [j.id for j in big + small]  # seq follows the batch order
    for by_copy, by_insert in zip(jobs[:BIG], jobs[BIG:], strict=True):
        assert comparable(by_copy) == comparable(by_insert)
        # -0.0 == 0.0: the sign is compared on its own
        assert str(by_copy.timeout) == str(by_insert.timeout)


@pytest.mark.parametrize("bad", ["nul\x00inside", "lone \ud800 surrogate"])
async def test_copy_refuses_what_the_small_insert_refuses(pg: PostgresStore, bad: str) -> None:
    jobs = [awkward(i) for i in range(BIG)]
    jobs[BIG // 2] = dataclasses.replace(jobs[BIG // 2], task=bad)
    with pytest.raises(Refused):
        await pg.insert_jobs(jobs, NOW)
    with pytest.raises((Refused, UnicodeEncodeError)):  # the core says both alike
        await pg.insert_jobs(jobs[BIG // 2 : BIG // 2 + 1], NOW)
    assert await stored(pg) == []
