"""What an operator on call does from the dashboard, in-process on both stores: bulk actions
by the list's filter (a count and a confirmation first), a queue's limits, the search by id
prefix and by text, the totals, full ids. Each action refused without its CSRF token or scope."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import pytest

from jobhandler import App, SubmitRequest
from jobhandler.http import create_app
from jobhandler.model.jobs import Outcome, Transition
from jobhandler.settings import Settings
from tests.http.test_dashboard import client, csrf_of, make_app


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[App]:
    served = make_app()
    async with served.connected(Settings(database_url=database_url)):
        yield served


async def statuses(app: App, ids: list[str]) -> set[str]:
    return {(await app.service.jobs.get(i)).status.value for i in ids}


async def failed_jobs(app: App, texts: list[str], queue: str = "default") -> list[str]:
    """Jobs that ran and failed, each with the error ``boom <text>``."""
    store = app.service.store
    ids = []
    for text in texts:
        request = SubmitRequest(payload=f"payload {text}", queue=queue, max_attempts=1)
        job_id = (await app.service.submits.submit(request)).id
        (job,) = await store.claim_jobs([queue], "w", 1, time.time() + 10, 30)
        assert job.id == job_id
        outcome = Outcome(job.id, job.attempt, Transition.FAIL, error=f"boom {text}")
        assert await store.finish_jobs([outcome], time.time()) == [True]
        ids.append(job_id)
    return ids


async def test_bulk_retry_by_filter_counts_confirms_then_retries(app: App) -> None:
    failed = await failed_jobs(app, ["a", "b", "c"])
    other = await failed_jobs(app, ["d"], queue="other")
    async with client(create_app(app)) as http:
        listing = await http.get("/ui/jobs", params={"status": "failed", "queue": "default"})
        assert "/ui/bulk/retry?status=failed&amp;queue=default" in listing.text
        confirm = await http.get("/ui/bulk/retry", params={"status": "failed", "queue": "default"})
        assert confirm.status_code == 200
        summary = re.search(r'id="bulk-summary">(.+?)</p>', confirm.text)
        assert summary is not None
        assert re.sub("<[^>]+>", "", summary.group(1)) == (
            "This will retry 3 failed jobs of queue default."
        )
        assert await statuses(app, failed) == {"failed"}
        form = {"csrf_token": csrf_of(confirm.text), "status": "failed", "queue": "default"}
        done = await http.post("/ui/bulk/retry", data=form)
        assert done.status_code == 200 and 'data-count="3"' in done.text
        assert "Retried" in done.text
    assert await statuses(app, failed) == {"queued"}
    assert (await app.service.jobs.get(other[0])).status == "failed"


async def test_bulk_actions_by_a_search_and_their_refusals(app: App) -> None:
    await failed_jobs(app, ["disk full", "timeout", "disk gone"])
    tokens = {s: (await app.service.tokens.create(s))[1] for s in ("read", "admin")}
    api = create_app(app)
    async with client(api) as read:
        await read.post("/ui/login", data={"token": tokens["read"]})
        listing = await read.get("/ui/jobs", params={"q": "disk"})
        assert listing.status_code == 200 and "/ui/bulk/" not in listing.text
        assert (await read.get("/ui/bulk/delete", params={"q": "disk"})).status_code == 403
        refused = await read.post(
            "/ui/bulk/delete", data={"csrf_token": csrf_of(listing.text), "q": "disk"}
        )
        assert refused.status_code == 403
    async with client(api) as admin:
        await admin.post("/ui/login", data={"token": tokens["admin"]})
        confirm = await admin.get("/ui/bulk/delete", params={"q": "DISK"})
        assert 'data-count="2"' in confirm.text and "“DISK”" in confirm.text
        no_csrf = await admin.post("/ui/bulk/delete", data={"q": "disk"})
        assert no_csrf.status_code == 403
        evil = await admin.post(
            "/ui/bulk/delete",
            data={"csrf_token": csrf_of(confirm.text), "q": "disk"},
            headers={"Origin": "http://evil.example"},
        )
        assert evil.status_code == 403
        assert len((await app.service.jobs.page()).jobs) == 3
        done = await admin.post(
            "/ui/bulk/delete", data={"csrf_token": csrf_of(confirm.text), "q": "disk"}
        )
        assert done.status_code == 200 and 'data-count="2"' in done.text
        assert (await admin.get("/ui/bulk/explode")).status_code == 404
        bad = await admin.get("/ui/bulk/retry", params={"id": "xyz!"})
        assert bad.status_code == 422
    left = (await app.service.jobs.page()).jobs
    assert [j.error for j in left] == ["boom timeout"]


async def test_search_by_id_prefix_and_by_text(app: App) -> None:
    ids = await failed_jobs(app, ["alpha", "beta_%", "gamma"])
    async with client(create_app(app)) as http:
        one = await http.get("/ui/jobs", params={"id": ids[1][:30].upper()})
        assert one.status_code == 303 and one.headers["location"] == f"/ui/jobs/{ids[1]}"
        whole = await http.get("/ui/jobs", params={"id": ids[2]})
        assert whole.status_code == 303 and whole.headers["location"] == f"/ui/jobs/{ids[2]}"
        shared = ids[0][: next(i for i in range(36) if len({x[:i] for x in ids}) > 1) - 1]
        many = await http.get("/ui/jobs", params={"id": shared})
        assert many.status_code == 200 and all(i in many.text for i in ids)
        assert 'id="search-window"' in many.text
        none = await http.get("/ui/jobs", params={"id": "ffffffff"})
        assert none.status_code == 200 and "No job matches." in none.text
        # Not hex: an id of the caller's own making, looked up whole, never a pattern.
        assert (await http.get("/ui/jobs", params={"id": "0199 or 1=1"})).status_code == 404
        mine = await http.get("/ui/jobs", params={"id": "order-17"})
        assert mine.status_code == 303 and mine.headers["location"] == "/ui/jobs/order-17"
        assert (await http.get("/ui/bulk/retry", params={"id": "0199%"})).status_code == 422

        async def found(**query: str) -> set[str]:
            page = await http.get("/ui/jobs", params=query)
            assert page.status_code == 200, page.text
            return {i for i in ids if i in page.text}

        assert await found(q="ALPHA") == {ids[0]}  # the error, in any case
        assert await found(q="payload gamma") == {ids[2]}  # the payload
        assert await found(q="_%") == {ids[1]}  # taken literally, not as a pattern
        assert await found(q="boom", status="completed") == set()
        assert await found(q="boom", status="failed") == set(ids)


async def test_queue_limits_from_the_queues_page(app: App) -> None:
    await failed_jobs(app, ["x"])
    async with client(create_app(app)) as http:
        page = await http.get("/ui/queues")
        csrf = csrf_of(page.text)
        assert 'action="/ui/queues/default/limits"' in page.text
        form = {"csrf_token": csrf, "concurrency": "3", "rate_limit": "10/min"}
        saved = await http.post("/ui/queues/default/limits", data=form)
        assert saved.status_code == 303 and saved.headers["location"] == "/ui/queues"
        queue = await app.service.flow.queue("default")
        assert (queue.concurrency, queue.rate_limit) == (3, "10/min")
        bad = {"csrf_token": csrf, "concurrency": "lots", "rate_limit": "fast"}
        refused = await http.post("/ui/queues/default/limits", data=bad)
        assert refused.status_code == 422
        assert "concurrency must be a whole number" in refused.text
        assert "a rate limit looks like 100/s" in refused.text
        assert 'value="lots"' in refused.text  # what was typed stays, next to its error
        queue = await app.service.flow.queue("default")
        assert (queue.concurrency, queue.rate_limit) == (3, "10/min")
        zero = await http.post(
            "/ui/queues/default/limits", data={"csrf_token": csrf, "concurrency": "0"}
        )
        assert zero.status_code == 422 and "concurrency must be 1 to" in zero.text
        cleared = await http.post("/ui/queues/default/limits", data={"csrf_token": csrf})
        assert cleared.status_code == 303
        queue = await app.service.flow.queue("default")
        assert (queue.concurrency, queue.rate_limit) == (None, None)
        no_csrf = await http.post("/ui/queues/default/limits", data={"concurrency": "1"})
        assert no_csrf.status_code == 403
        unknown = await http.post("/ui/queues/nope/limits", data={"csrf_token": csrf})
        assert unknown.status_code == 404


async def test_queue_limits_need_the_admin_scope(app: App) -> None:
    await failed_jobs(app, ["x"])
    _, token = await app.service.tokens.create("read")
    async with client(create_app(app)) as http:
        await http.post("/ui/login", data={"token": token})
        page = await http.get("/ui/queues")
        assert "/limits" not in page.text
        form = {"csrf_token": csrf_of(page.text), "concurrency": "2"}
        assert (await http.post("/ui/queues/default/limits", data=form)).status_code == 403
    assert (await app.service.flow.queue("default")).concurrency is None


async def test_totals_full_ids_and_absolute_times(app: App) -> None:
    ids = await failed_jobs(app, ["a", "b"])
    await app.service.submits.submit(SubmitRequest(payload="later", delay=3600))
    async with client(create_app(app)) as http:
        overview = (await http.get("/ui/")).text
        totals = dict(re.findall(r'data-total="(\w+)">([\d,]+)<', overview))
        assert totals["processed"] == "2" and totals["failed"] == "2"
        assert totals["waiting"] == "1" and totals["completed"] == "0"
        listing = (await http.get("/ui/jobs")).text
        for job_id in ids:
            assert f">{job_id}</a>" in listing and f'data-copy="{job_id}"' in listing
        stamps = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">', listing)
        assert stamps and all(a == b and b.endswith("Z") for a, b in stamps)
