"""Fixtures the store tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobhandler.store.postgres.dialect import PostgresStore


@pytest.fixture
async def pg(pg_database_url: str) -> AsyncIterator[PostgresStore]:
    """A migrated PostgreSQL store on a database of the test's own."""
    store = PostgresStore(pg_database_url)
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()
