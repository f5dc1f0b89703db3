"""Unique keys, Idempotency-Key, bulk actions and strict query parameters over HTTP.

In process (httpx over ASGI) against a real store: what a client sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobhandler.app import App
from jobhandler.http.api import create_app
from jobhandler.settings import Settings


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = App(default_task="echo")

    @app.task
    async def echo(payload: str) -> str:
        return payload

    async with app.connected(Settings(database_url=database_url)):
        transport = httpx.ASGITransport(create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


def problem(response: httpx.Response, status: int, contains: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert contains in body["error"], body
    return body


async def count(http: httpx.AsyncClient, **params: Any) -> int:
    return len((await http.get("/jobs", params={"limit": 1000, **params})).json())


async def test_a_duplicate_unique_key_answers_200_with_the_job_holding_it(
    http: httpx.AsyncClient,
) -> None:
    first = await http.post("/jobs", json={"payload": "a", "unique_key": "order-1"})
    assert first.status_code == 201 and first.json()["unique_key"] == "order-1"
    again = await http.post("/jobs", json={"payload": "b", "unique_key": "order-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == f"/jobs/{first.json()['id']}"
    window = await http.post(
        "/jobs", json={"payload": "c", "unique_key": "w", "unique_for": 3600, "delay": 60}
    )
    assert window.status_code == 201 and window.json()["unique_until"] is not None
    body = {"jobs": [{"payload": "d", "unique_key": "order-1"}, {"payload": "e"}]}
    batch = await http.post("/jobs/batch", json=body)
    assert batch.status_code == 201 and batch.json()["duplicates"] == [0]
    assert batch.json()["jobs"][0]["id"] == first.json()["id"]
    all_dups = await http.post("/jobs/batch", json={"jobs": [body["jobs"][0]]})
    assert all_dups.status_code == 200 and all_dups.json()["duplicates"] == [0]
    assert await count(http) == 3
    problem(await http.post("/jobs", json={"payload": "x", "unique_for": 5}), 422, "unique_key")
    problem(await http.post("/jobs", json={"payload": "x", "unique_key": ""}), 422, "unique_key")


async def test_an_idempotency_key_replays_the_first_answer(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "req-1"}
    first = await http.post("/jobs", json={"payload": "a"}, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = await http.post("/jobs", json={"payload": "a"}, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    problem(await http.post("/jobs", json={"payload": "b"}, headers=headers), 422, "another")
    batch = {"jobs": [{"payload": "x"}, {"payload": "y"}]}
    made = await http.post("/jobs/batch", json=batch, headers={"Idempotency-Key": "b-1"})
    replay = await http.post("/jobs/batch", json=batch, headers={"Idempotency-Key": "b-1"})
    assert replay.status_code == made.status_code == 201
    assert [j["id"] for j in replay.json()["jobs"]] == [j["id"] for j in made.json()["jobs"]]
    assert await count(http) == 3
    problem(
        await http.post("/jobs", json={"payload": "a"}, headers={"Idempotency-Key": ""}),
        400,
        "Idempotency-Key",
    )


async def test_concurrent_requests_with_one_key_create_one_job(http: httpx.AsyncClient) -> None:
    send = [
        http.post("/jobs", json={"payload": "same"}, headers={"Idempotency-Key": "k"})
        for _ in range(10)
    ] + [http.post("/jobs", json={"payload": "u", "unique_key": "u"}) for _ in range(10)]
    answers = await asyncio.gather(*send)
    assert len({a.json()["id"] for a in answers[:10]}) == 1
    assert len({a.json()["id"] for a in answers[10:]}) == 1
    assert sorted(a.status_code for a in answers[10:]) == [200] * 9 + [201]
    assert await count(http) == 2


async def test_bulk_actions_by_filter_answer_the_count(http: httpx.AsyncClient) -> None:
    jobs = [{"payload": str(i), "delay": 3600, "queue": "q" if i % 2 else "r"} for i in range(6)]
    await http.post("/jobs/batch", json={"jobs": jobs})
    cancelled = await http.post("/jobs/bulk/cancel", json={"queue": "q"})
    assert cancelled.status_code == 200 and cancelled.json() == {"action": "cancel", "count": 3}
    assert await count(http, status="cancelled") == 3
    retried = await http.post("/jobs/bulk/retry", json={"status": ["cancelled", "failed"]})
    assert retried.json()["count"] == 3
    await http.post("/jobs/bulk/cancel", json={})
    future = "2099-01-01T00:00:00Z"
    assert (await http.post("/jobs/bulk/delete", json={"created_before": future})).json()[
        "count"
    ] == 6
    assert await count(http) == 0
    problem(await http.post("/jobs/bulk/cancel", json={"payload": "x"}), 422, "payload")
    problem(await http.post("/jobs/bulk/explode", json={}), 422, "action")
    problem(await http.post("/jobs/bulk/cancel", json=[]), 400, "object")
    naive = {"created_before": "2030-01-01T00:00:00"}
    problem(await http.post("/jobs/bulk/cancel", json=naive), 422, "time zone")
    problem(await http.get("/jobs", params={"created_before": "0.5"}), 422, "RFC 3339")


async def test_unknown_query_parameters_are_refused_on_every_route(
    http: httpx.AsyncClient,
) -> None:
    body = problem(await http.get("/jobs", params={"payload": "x"}), 422, "payload")
    assert body["errors"] == [
        {"loc": ["query", "payload"], "msg": "unknown query parameter", "type": "extra"}
    ]
    assert (await http.get("/jobs", params={"status": "queued", "limit": 5})).status_code == 200
    for path in ("/tasks", "/queues", "/workers", "/healthz", "/jobs/nope"):
        problem(await http.get(path, params={"verbose": "1"}), 422, "verbose")
    job = (await http.post("/jobs", json={"payload": "x"})).json()
    assert (await http.get(f"/jobs/{job['id']}", params={"wait": 0})).status_code == 200
    problem(await http.post("/jobs", json={"payload": "x"}, params={"dry": "1"}), 422, "dry")
    spec = (await http.get("/openapi.json")).json()
    assert "422" in spec["paths"]["/healthz"]["get"]["responses"]
