"""The dashboard over HTTP, in-process on both stores: sign-in with the API's tokens, scopes,
CSRF, and mounting under a prefix. What a real browser sees is in tests/browser/."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from jobhandler import App, SubmitRequest
from jobhandler.http import create_app
from jobhandler.http.dashboard import create_dashboard
from jobhandler.settings import Settings
from jobhandler.worker.schedules import Scheduler

BASE = "http://127.0.0.1:8080"


def make_app() -> App:
    app = App(default_task="echo")

    @app.task
    async def echo(text: str) -> str:
        return text

    @app.periodic(every=3600, name="hourly")
    @app.task
    async def tick() -> None:
        return None

    return app


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[App]:
    served = make_app()
    async with served.connected(Settings(database_url=sqlite_url)):
        yield served


@pytest.fixture
async def app_on_each_store(database_url: str) -> AsyncIterator[App]:
    """For the pages that read through every kind of store operation: on both stores."""
    served = make_app()
    async with served.connected(Settings(database_url=database_url)):
        yield served


def client(asgi: Any, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url=BASE, **kwargs)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def later_job(app: App) -> str:
    return (await app.service.submits.submit(SubmitRequest(payload="x", delay=3600))).id


async def test_open_dashboard_pages_and_a_session_cookie(app_on_each_store: App) -> None:
    app = app_on_each_store
    job_id = await later_job(app)
    async with client(create_app(app)) as http:
        to_ui = await http.get("/")
        assert to_ui.status_code == 307 and to_ui.headers["location"] == "ui/"
        for path in ("/ui/", "/ui/jobs", f"/ui/jobs/{job_id}", "/ui/queues", "/ui/workers"):
            page = await http.get(path)
            assert page.status_code == 200, (path, page.text)
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
        for path in ("/ui/tasks", "/ui/tasks/echo", "/ui/schedules", "/ui/login"):
            assert (await http.get(path)).status_code == 200, path
        async with client(create_app(app)) as fresh:
            cookie = (await fresh.get("/ui/")).headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui/" in cookie
        assert (await http.get("/ui/jobs/not-a-job")).status_code == 404
        unknown = "01a22c32-cec7-73cc-b738-d9dde5b80752"
        assert (await http.get(f"/ui/jobs/{unknown}/events")).status_code == 404
        assert (await http.get("/ui/jobs", params={"status": "nope"})).status_code == 422
        assert (await http.get("/ui/jobs", params={"cursor": "x"})).status_code == 422
        found = await http.get("/ui/jobs", params={"id": job_id})
        assert found.status_code == 303 and found.headers["location"] == f"/ui/jobs/{job_id}"


async def test_actions_need_the_sessions_csrf_token_and_this_origin(app: App) -> None:
    job_id = await later_job(app)
    async with client(create_app(app)) as http:
        csrf = csrf_of((await http.get(f"/ui/jobs/{job_id}")).text)
        cancel = f"/ui/jobs/{job_id}/cancel"
        assert (await http.post(cancel, data={"other": "1"})).status_code == 403
        assert (await http.post(cancel, data={"csrf_token": "0" * 64})).status_code == 403
        evil = {"Origin": "http://evil.example"}
        refused = await http.post(cancel, data={"csrf_token": csrf}, headers=evil)
        assert refused.status_code == 403
        assert (await app.service.jobs.get(job_id)).status == "scheduled"
        # Another browser (another session cookie) cannot use this page's token either.
        async with client(create_app(app)) as other:
            await other.get("/ui/")
            assert (await other.post(cancel, data={"csrf_token": csrf})).status_code == 403
        done = await http.post(cancel, data={"csrf_token": csrf}, headers={"Origin": BASE})
        assert done.status_code == 303 and done.headers["location"] == f"/ui/jobs/{job_id}"
        assert (await app.service.jobs.get(job_id)).status == "cancelled"
        again = await http.post(cancel, data={"csrf_token": csrf})
        assert again.status_code == 409 and "cancel" in again.text
        assert (await http.post(f"/ui/jobs/{job_id}/retry", data={"csrf_token": csrf})).is_redirect
        assert (await app.service.jobs.get(job_id)).status == "queued"


async def test_the_submit_form_checks_the_payload_like_the_api(app: App) -> None:
    async with client(create_app(app)) as http:
        csrf = csrf_of((await http.get("/ui/tasks/echo")).text)
        bad = await http.post("/ui/tasks/echo", data={"csrf_token": csrf, "delay": "-1"})
        assert bad.status_code == 422 and "delay" in bad.text
        ok = await http.post("/ui/tasks/echo", data={"csrf_token": csrf, "payload": "hi"})
        assert ok.status_code == 303
        job = await app.service.jobs.get(ok.headers["location"].rsplit("/", 1)[1])
        assert job.payload == "hi" and job.task == "echo"
        as_json = await http.post(
            "/ui/tasks/echo", json={"payload": "x"}, headers={"X-CSRF-Token": csrf}
        )
        assert as_json.status_code == 415


async def test_sign_in_with_a_token_and_its_scope(app_on_each_store: App) -> None:
    app = app_on_each_store
    tokens = {
        scope: (await app.service.tokens.create(scope))[1] for scope in ("read", "submit", "admin")
    }
    job_id = await later_job(app)
    api = create_app(app)
    async with client(api) as http:
        asked = await http.get("/ui/jobs?status=scheduled")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/ui/login?next=%2Fjobs%3Fstatus%3Dscheduled"
        assert (await http.get(f"/ui/jobs/{job_id}")).status_code == 303
        assert (await http.get(f"/ui/jobs/{job_id}/events")).status_code == 303
        assert (await http.get("/ui/static/dashboard.css")).status_code == 200
        wrong = await http.post("/ui/login", data={"token": "jh_nope", "next": "/"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        # The API itself still wants its bearer token: the cookie is the dashboard's only.
        assert (await http.get("/jobs")).status_code == 401

    async def sign_in(http: httpx.AsyncClient, scope: str) -> None:
        login = await http.post("/ui/login", data={"token": tokens[scope], "next": "//evil.ex"})
        assert login.status_code == 303 and login.headers["location"] == "/ui/"  # not off-site
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie

    async with client(api) as read:
        await sign_in(read, "read")
        assert (await read.get(f"/ui/jobs/{job_id}")).status_code == 200
        page = await read.get("/ui/jobs")
        assert page.status_code == 200 and f'href="/ui/jobs/{job_id}"' in page.text
        assert "Cancel" not in (await read.get(f"/ui/jobs/{job_id}")).text
        csrf = csrf_of(page.text)
        refused = await read.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": csrf})
        assert refused.status_code == 403
    async with client(api) as submit:
        await sign_in(submit, "submit")
        assert (await submit.get("/ui/jobs")).status_code == 403
        form = await submit.get("/ui/tasks/echo")
        assert ">Tasks</a>" in form.text and ">Jobs</a>" not in form.text  # only what it may
        sent = await submit.post(
            "/ui/tasks/echo", data={"csrf_token": csrf_of(form.text), "payload": "a"}
        )
        assert sent.status_code == 303
        assert (await submit.get(sent.headers["location"])).status_code == 200
    async with client(api) as admin:
        await sign_in(admin, "admin")
        csrf = csrf_of((await admin.get(f"/ui/jobs/{job_id}")).text)
        done = await admin.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": csrf})
        assert done.status_code == 303
        assert (await app.service.jobs.get(job_id)).status == "cancelled"
        out = await admin.post("/ui/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and 'jobhandler_session=""' in out.headers["set-cookie"]


async def test_a_revoked_token_ends_its_session(app: App) -> None:
    _, token = await app.service.tokens.create("admin", "ops")
    async with client(create_app(app)) as http:
        await http.post("/ui/login", data={"token": token})
        assert (await http.get("/ui/jobs")).status_code == 200
        await app.service.tokens.revoke("ops")
        await app.service.tokens.create("read")  # the store still holds a token: not open again
        http.cookies.set("jobhandler_session", token)

        async def signed_out() -> bool:
            return (await http.get("/ui/jobs")).status_code == 303

        deadline = time.monotonic() + 5  # the token cache forgets it within a second
        while not await signed_out():
            assert time.monotonic() < deadline, "the revoked token still signs in"
            await asyncio.sleep(0.05)


async def test_mounted_under_a_prefix_every_link_follows(app: App) -> None:
    host = FastAPI()
    host.mount("/admin/jobs", create_dashboard(app))
    job_id = await later_job(app)
    async with client(host) as http:
        page = await http.get("/admin/jobs/jobs")
        assert page.status_code == 200
        links = re.findall(r'(?:href|action|src)="([^"]+)"', page.text)
        links.remove("data:,")  # the empty favicon
        assert links and all(link.startswith("/admin/jobs/") for link in links), links
        assert f'href="/admin/jobs/jobs/{job_id}"' in page.text
        assert "path=/admin/jobs/" in page.headers["set-cookie"].lower()
        assert (await http.get("/admin/jobs/static/dashboard.js")).status_code == 200
        csrf = csrf_of((await http.get(f"/admin/jobs/jobs/{job_id}")).text)
        done = await http.post(f"/admin/jobs/jobs/{job_id}/cancel", data={"csrf_token": csrf})
        assert done.headers["location"] == f"/admin/jobs/jobs/{job_id}"


async def test_pause_and_resume_a_queue_and_a_schedule(app: App) -> None:
    await later_job(app)
    async with client(create_app(app)) as http:
        page = await http.get("/ui/queues")
        csrf = csrf_of(page.text)
        paused = await http.post("/ui/queues/default/pause", data={"csrf_token": csrf})
        assert paused.status_code == 303 and paused.headers["location"] == "/ui/queues"
        assert next(q for q in await app.service.flow.queue_stats() if q.queue == "default").paused
        assert ">Resume</button>" in (await http.get("/ui/queues")).text
        await http.post("/ui/queues/default/resume", data={"csrf_token": csrf})
        assert not next(
            q for q in await app.service.flow.queue_stats() if q.queue == "default"
        ).paused
        unknown = await http.post("/ui/schedules/nope/pause", data={"csrf_token": csrf})
        assert unknown.status_code == 404
        other = await http.post("/ui/jobs/x/explode", data={"csrf_token": csrf})
        assert other.status_code == 404
        await Scheduler(app, app.settings).sync()  # what a worker does as it starts
        assert ">Pause</button>" in (await http.get("/ui/schedules")).text
        await http.post("/ui/schedules/hourly/pause", data={"csrf_token": csrf})
        assert [s.paused for s in await app.service.schedules.all()] == [True]
        assert ">Resume</button>" in (await http.get("/ui/schedules")).text


async def test_a_user_retry_shows_as_such_on_the_job_page(app_on_each_store: App) -> None:
    """After a user retry the page counts attempts afresh ("1 of 3, after 2 earlier runs"),
    not "attempt 3 of 3", and its attempts mark where the user's retry happened."""
    from jobhandler.model.jobs import Outcome, Transition

    app = app_on_each_store
    store = app.service.store
    job_id = (await app.service.submits.submit(SubmitRequest(payload="x", max_attempts=3))).id
    for transition in (Transition.RELEASE, Transition.RETRY_LATER, Transition.FAIL):
        (job,) = await store.claim_jobs(["default"], "w", 1, time.time() + 10, 30)
        outcome = Outcome(job.id, job.attempt, transition, error="boom", run_at=time.time())
        assert await store.finish_jobs([outcome], time.time()) == [True]
    await app.service.jobs.retry(job_id)
    (job,) = await store.claim_jobs(["default"], "w", 1, time.time() + 10, 30)
    runs = await app.service.jobs.attempts(job_id)
    assert [(r.outcome, r.after_user_retry) for r in runs] == [
        ("interrupted", False),
        ("scheduled", False),
        ("failed", False),
        (None, True),
    ]
    async with client(create_app(app)) as http:
        page = (await http.get(f"/ui/jobs/{job_id}")).text
        shown = (await http.get(f"/jobs/{job_id}/attempts")).json()
    assert [(r["outcome"], r["after_user_retry"]) for r in shown] == [
        ("interrupted", False),
        ("scheduled", False),
        ("failed", False),
        (None, True),
    ]
    attempt = re.search(r'id="job-attempt">([^<]+)<', page)
    assert attempt and attempt.group(1).startswith("1 of 3, after 3 earlier runs not counted")
    assert page.count("retried by a user") == 1
