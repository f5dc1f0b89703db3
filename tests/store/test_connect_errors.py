"""A PostgreSQL store that cannot be reached says so in one line, at once, with no pool noise."""

from __future__ import annotations

import logging

import pytest

from jobhandler.model.errors import StoreUnavailable
from jobhandler.store.postgres.dialect import PostgresStore
from tests.conftest import free_port, run_cli


def test_the_cli_prints_one_line_for_a_server_that_is_down() -> None:
    url = f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/jobs"
    done = run_cli("migrate", "--database", url)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: postgresql: connection failed:"), lines
    assert "Connection refused" in lines[0] and "hunter2" not in lines[0]


async def test_the_store_fails_fast_without_pool_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresStore("postgresql://someone@name-that-does-not-resolve.invalid/jobs")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.migrate()
    finally:
        await store.close()
    assert "\n" not in str(raised.value)
    assert "failed to resolve host" in str(raised.value)
    assert not [r for r in caplog.records if r.name.startswith("psycopg.pool")]
