"""Schedules over HTTP, in process (httpx over ASGI) against a real store: listed with their
next run, paused and resumed, every answer as the OpenAPI description says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from jobhandler.app import App
from jobhandler.http.api import create_app
from jobhandler.settings import Settings
from jobhandler.worker.schedules import Scheduler


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = App()

    @app.periodic(cron="*/5 * * * *", timezone="Europe/Berlin", payload="hello")
    @app.task
    async def echo(payload: str) -> str:
        return payload

    settings = Settings(database_url=database_url)
    async with app.connected(settings):
        await Scheduler(app, settings).sync()  # what a worker does as it starts
        transport = httpx.ASGITransport(create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def conforms(http: httpx.AsyncClient, response: httpx.Response, path: str) -> Any:
    spec = (await http.get("/openapi.json")).json()
    method = response.request.method.lower()
    declared = spec["paths"][path][method]["responses"][str(response.status_code)]
    ((media_type, media),) = declared["content"].items()
    assert response.headers["content-type"].startswith(media_type)
    schema = {**media["schema"], "components": spec["components"]}
    jsonschema_rs.validator_for(schema, validate_formats=True).validate(response.json())
    return response.json()


async def test_list_pause_and_resume(http: httpx.AsyncClient) -> None:
    (listed,) = await conforms(http, await http.get("/schedules"), "/schedules")
    assert listed["name"] == "echo" and listed["cron"] == "*/5 * * * *"
    assert (listed["timezone"], listed["payload"], listed["missed"]) == (
        "Europe/Berlin",
        "hello",
        "skip",
    )
    assert listed["next_run_at"].endswith("Z") and listed["last_run_at"] is None
    paused = await http.post("/schedules/echo/pause")
    assert (await conforms(http, paused, "/schedules/{name}/pause"))["paused"] is True
    (again,) = (await http.get("/schedules")).json()
    assert again["paused"] is True
    resumed = await http.post("/schedules/echo/resume")
    assert (await conforms(http, resumed, "/schedules/{name}/resume"))["paused"] is False


async def test_an_unknown_or_malformed_name(http: httpx.AsyncClient) -> None:
    missing = await http.post("/schedules/nope/pause")
    assert missing.status_code == 404
    body = await conforms(http, missing, "/schedules/{name}/pause")
    assert body["error"] == "no schedule named 'nope'"
    bad = await http.post("/schedules/no%20spaces/resume")
    assert bad.status_code == 422
    await conforms(http, bad, "/schedules/{name}/resume")
