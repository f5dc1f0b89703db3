"""The chaos tests' own fixtures: a PostgreSQL server a test may restart, and a host with a link
for its clients that a partition leaves up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.netns import Host, host, require_root_and_ip
from tests.chaos.private_pg import PrivatePostgres, private_postgres


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own (tests/chaos/private_pg.py)."""
    with private_postgres() as server:
        yield server


@pytest.fixture
def api_host() -> Iterator[Host]:
    """A network namespace for an API server: partitions cut its database link only."""
    require_root_and_ip()
    with host(client_link=True) as made:
        yield made
