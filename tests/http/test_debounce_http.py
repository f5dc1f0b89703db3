"""Debounce over HTTP (issue #21 item 3): a submit while the key's job waits answers 200 with
that job, now carrying the new payload and a later start; bad values are refused. In process
(httpx over ASGI) against a real store, both stores."""

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
    app = App(default_task="search")

    @app.task
    async def search(text: str) -> str:
        return text

    async with app.connected(Settings(database_url=database_url)):
        transport = httpx.ASGITransport(create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def test_a_debounced_submit_answers_with_the_one_job_and_its_new_payload(
    http: httpx.AsyncClient,
) -> None:
    body: dict[str, Any] = {"unique_key": "q", "debounce": 30, "debounce_max_wait": 60}
    first = await http.post("/jobs", json={"payload": "a", **body})
    assert first.status_code == 201 and first.json()["status"] == "scheduled"
    again = await http.post("/jobs", json={"payload": "ab", **body})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["payload"] == "ab"
    assert again.json()["run_at"] >= first.json()["run_at"]
    many = [http.post("/jobs", json={"payload": f"abc{i}", **body}) for i in range(10)]
    answers = await asyncio.gather(*many)
    assert {a.json()["id"] for a in answers} == {first.json()["id"]}
    (job,) = (await http.get("/jobs")).json()
    assert job["payload"] in {f"abc{i}" for i in range(10)}


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ({"debounce": 5}, "unique_key"),
        ({"unique_key": "k", "debounce": 0}, "debounce"),
        ({"unique_key": "k", "debounce": -1}, "debounce"),
        ({"unique_key": "k", "debounce": 1e300}, "debounce"),
        ({"unique_key": "k", "debounce": "5"}, "debounce"),
        ({"unique_key": "k", "debounce": True}, "debounce"),
        ({"unique_key": "k", "debounce_max_wait": 5}, "debounce"),
        ({"unique_key": "k", "debounce": 5, "debounce_max_wait": 1}, "debounce_max_wait"),
        ({"unique_key": "k", "debounce": 5, "unique_for": 9}, "unique_for"),
        ({"unique_key": "k", "debounce": 5, "delay": 9}, "delay"),
    ],
)
async def test_bad_debounce_values_are_422(
    http: httpx.AsyncClient, extra: dict[str, Any], names: str
) -> None:
    answer = await http.post("/jobs", json={"payload": "x", **extra})
    assert answer.status_code == 422, answer.text
    assert names in answer.text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_debounce_is_refused_like_any_number(
    http: httpx.AsyncClient, token: str
) -> None:
    body = f'{{"payload":"x","unique_key":"k","debounce":{token}}}'
    answer = await http.post(
        "/jobs", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert answer.status_code in (400, 422), answer.text  # as for timeout: never stored
    assert (await http.get("/jobs")).json() == []


async def test_a_workflow_refuses_debounce(http: httpx.AsyncClient) -> None:
    job = {"key": "a", "payload": "x", "unique_key": "k", "debounce": 5}
    answer = await http.post("/workflows", json={"name": "w", "jobs": [job]})
    assert answer.status_code == 422 and "debounce" in answer.text
