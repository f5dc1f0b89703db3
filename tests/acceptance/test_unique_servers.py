"""Unique keys and Idempotency-Key hold across two API servers on one PostgreSQL, under
concurrent submits from many threads."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Process, Server, test_env

ROUNDS = 5
SENDERS = 16


def test_two_servers_create_one_job_per_key(
    spawn: Callable[..., Process], pg_database_url: str
) -> None:
    env = test_env(pg_database_url)
    procs = [spawn(["serve", "--no-worker"], env, server=True) for _ in range(2)]
    apis = [p.wait_ready() for p in procs if isinstance(p, Server)]
    clients = [httpx.Client(base_url=api.url, timeout=30) for api in apis]

    def send(n: int, key: str) -> httpx.Response:
        http = clients[n % 2]  # alternate between the two servers
        if n % 4 < 2:  # half by unique key, half by idempotency key
            return http.post("/jobs", json={"payload": "u", "unique_key": f"u{key}"})
        return http.post("/jobs", json={"payload": "i"}, headers={"Idempotency-Key": f"i{key}"})

    with ThreadPoolExecutor(SENDERS) as pool:
        for round_ in range(ROUNDS):
            sent = list(pool.map(send, range(SENDERS * 2), [str(round_)] * SENDERS * 2))
            unique = [r for n, r in enumerate(sent) if n % 4 < 2]
            idem = [r for n, r in enumerate(sent) if n % 4 >= 2]
            assert all(r.status_code in (200, 201) for r in unique + idem)
            assert len({r.json()["id"] for r in unique}) == 1
            assert [r.status_code for r in unique].count(201) == 1
            assert len({r.json()["id"] for r in idem}) == 1
    listed = clients[0].get("/jobs", params={"limit": 1000}).json()
    assert len(listed) == 2 * ROUNDS
    for http in clients:
        http.close()
