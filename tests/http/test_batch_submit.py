"""POST /jobs/batch: each job is checked and made once, and the answers say the same as ever."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobhandler import App
from jobhandler.http.api import create_app
from jobhandler.settings import Settings


@pytest.fixture
async def http(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = App()

    @app.task
    async def square(n: int) -> int:
        return n * n

    async with app.connected(Settings(database_url=sqlite_url)):
        transport = httpx.ASGITransport(create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


def jobs(*payloads: Any) -> dict[str, Any]:
    return {"jobs": [{"task": "square", "payload": p} for p in payloads]}


async def stored(http: httpx.AsyncClient) -> int:
    return len((await http.get("/jobs", params={"limit": 1000})).json())


async def test_a_batch_is_stored_with_distinct_ids_and_one_submit_time(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post("/jobs/batch", json=jobs(*range(50)))
    assert answer.status_code == 201, answer.text
    made = answer.json()["jobs"]
    assert [j["payload"] for j in made] == list(range(50))
    assert len({j["id"] for j in made}) == 50
    assert len({j["created_at"] for j in made}) == 1
    assert await stored(http) == 50


@pytest.mark.parametrize("size", [0, 1001])
async def test_a_batch_of_the_wrong_size_is_refused(http: httpx.AsyncClient, size: int) -> None:
    answer = await http.post("/jobs/batch", json=jobs(*[1] * size))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [
        {
            "loc": ["jobs"],
            "msg": f"a batch holds 1 to 1000 jobs, not {size}",
            "type": "batch_size",
        }
    ]
    assert await stored(http) == 0


async def test_every_bad_job_is_named_and_nothing_is_stored(http: httpx.AsyncClient) -> None:
    body = jobs(1, "two", 3)
    body["jobs"].append({"task": "square"})  # no payload
    answer = await http.post("/jobs/batch", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["error"] == "2 errors in the batch; nothing was stored"
    assert [e["loc"][:2] for e in problem["errors"]] == [["jobs", 1], ["jobs", 3]]
    assert await stored(http) == 0


async def test_a_repeated_idempotency_key_replays_the_first_batch(
    http: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    first = await http.post("/jobs/batch", json=jobs(1, 2), headers=headers)
    again = await http.post("/jobs/batch", json=jobs(1, 2), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    assert await stored(http) == 2
