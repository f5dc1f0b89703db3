"""The documented way to put Job Handler into an existing FastAPI app: its API and dashboard
mounted under a path, the App connected (and a worker run) by the host's own lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient

from jobhandler import App, Settings
from jobhandler.contrib.fastapi import running
from jobhandler.http.api import create_app


def test_a_mounted_api_shares_the_host_apps_lifespan(sqlite_url: str) -> None:
    jobs = App()

    @jobs.task
    async def shout(text: str) -> str:
        return text.upper()

    settings = Settings(database_url=sqlite_url, poll_interval=0.05)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(jobs, settings):
            yield

    host = FastAPI(lifespan=lifespan)

    @host.get("/hello")
    async def hello() -> dict[str, str]:
        job = await shout.enqueue("hi")  # the host's own routes use the App directly
        return {"job": job.id}

    host.mount("/jobs", create_app(jobs, settings))
    with TestClient(host, base_url="http://localhost") as client:
        created = client.post("/jobs/jobs", json={"task": "shout", "payload": "hey"})
        assert created.status_code == 201, created.text
        done = client.get(f"/jobs/jobs/{created.json()['id']}?wait=10").json()
        assert done["status"] == "completed" and done["result"] == "HEY"
        job_id = client.get("/hello").json()["job"]
        done = client.get(f"/jobs/jobs/{job_id}?wait=10").json()
        assert done["status"] == "completed" and done["result"] == "HI"
        page = client.get("/jobs/", follow_redirects=True)  # on to the dashboard
        assert page.status_code == 200 and page.url.path.startswith("/jobs/ui"), page.url
