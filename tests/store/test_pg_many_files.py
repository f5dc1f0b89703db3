"""A process with more than 1,023 files open (a server holding many client connections: `serve`
raises its limit to fit them) still gets database connections: a pool's checkout check once
used select(), which refuses such descriptors, and every request then waited 5 s for a 503."""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Iterator

import pytest

from jobhandler.store.postgres.dialect import PostgresStore

PAST_SELECT = 1100  # descriptors held open, so that every new one is past select()'s 1,023


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < PAST_SELECT + 200:
        pytest.skip(f"this machine allows only {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(PAST_SELECT)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_connections_past_descriptor_1023_are_used(
    many_files: None, pg_database_url: str
) -> None:
    store = PostgresStore(pg_database_url)
    try:
        await store.migrate()
        # Several at once: the pool opens more connections, each past descriptor 1,023.
        await asyncio.wait_for(asyncio.gather(*(store.ping() for _ in range(6))), 10)
        await asyncio.wait_for(store.ping(), 10)
        async with store.transaction() as conn:  # a task's transaction, from its own pool
            await conn.execute("SELECT 1")

        def in_a_thread() -> None:
            with store.transaction_sync() as conn:
                conn.execute("SELECT 1")

        await asyncio.wait_for(asyncio.to_thread(in_a_thread), 10)
        async with store.transaction() as conn:  # its second checkout runs the check
            await conn.execute("SELECT 1")
        await asyncio.wait_for(asyncio.to_thread(in_a_thread), 10)
    finally:
        await store.close()
