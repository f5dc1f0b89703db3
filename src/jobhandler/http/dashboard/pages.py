"""The dashboard's pages. Each reads only what an index answers at any size: counts kept by the
store (``queue_stats``), keyset pages (``list_jobs``), one job by id, the live workers."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobhandler.http.dashboard import chart
from jobhandler.http.dashboard.forms import SubmitForm, form_fields
from jobhandler.http.dashboard.web import dashboard, links
from jobhandler.model.errors import InvalidJob, JobNotFound
from jobhandler.model.jobs import JobStatus
from jobhandler.model.records import SEARCH_WINDOW, JobFilter
from jobhandler.model.validation import filter_error, id_prefix_error, is_job_id

PAGE_SIZE = 50
UUID_LENGTH = 36
RUNNING_SHOWN = 200  # running jobs read for the workers page, at most


async def overview(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/queues")
    stats = await dash.service.flow.queue_stats()
    minutes = await dash.service.throughput(time.time() - chart.HOUR)
    totals: dict[str, int] = defaultdict(int)  # from the store's counters: no table scan
    for q in stats:
        for status, n in q.counts.items():
            totals[status] += n
    return dash.render(
        request,
        viewer,
        "overview.html",
        stats=stats,
        totals=totals,
        statuses=list(JobStatus),
        chart=chart.chart(minutes, time.time()),
        nav="overview",
    )


FILTERS = ("status", "queue", "task", "id", "q")  # the jobs list's query: a bulk action's too


def job_filter(given: Mapping[str, str]) -> tuple[JobFilter, dict[str, str]]:
    """The list's filters (from a query string or a form): 422 for text a store cannot compare.
    ``id``: the start of an id; ``q``: text in the payload or the error (see SEARCH_WINDOW)."""
    params = {k: given.get(k, "").strip() for k in FILTERS}
    params["id"] = params["id"].lower()
    errors = [
        e
        for name in ("queue", "task", "q")
        if params[name] and (e := filter_error(params[name], ["query", name])) is not None
    ]
    if params["id"] and (e := id_prefix_error(params["id"], ["query", "id"])) is not None:
        errors.append(e)
    if params["status"] and params["status"] not in set(JobStatus):
        errors.append({"loc": ["query", "status"], "msg": "not a status", "type": "enum"})
    if errors:
        raise InvalidJob(f"{'.'.join(map(str, errors[0]['loc']))}: {errors[0]['msg']}", errors)
    statuses = frozenset({JobStatus(params["status"])}) if params["status"] else frozenset()
    where = JobFilter(
        statuses=statuses,
        queue=params["queue"] or None,
        task=params["task"] or None,
        id_prefix=params["id"] or None,
        search=params["q"] or None,
    )
    return where, params


async def jobs(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/jobs")
    wanted = request.query_params.get("id", "").strip()
    # A whole id (or one of the caller's own making, not hex): its page; else a prefix.
    if wanted and (len(wanted) == UUID_LENGTH or id_prefix_error(wanted.lower(), []) is not None):
        if not is_job_id(wanted):
            raise JobNotFound(wanted)
        return RedirectResponse(links(request)("job", job_id=wanted), status_code=303)
    where, params = job_filter(request.query_params)
    cursor = request.query_params.get("cursor") or None
    try:
        page = await dash.service.jobs.page(where, PAGE_SIZE, cursor)
    except ValueError as exc:
        raise InvalidJob(str(exc), []) from None
    if where.id_prefix and cursor is None and len(page.jobs) == 1 and not page.next_cursor:
        return RedirectResponse(links(request)("job", job_id=page.jobs[0].id), status_code=303)
    return dash.render(
        request,
        viewer,
        "jobs.html",
        page=page,
        params=params,
        statuses=list(JobStatus),
        queues=sorted({t.options.queue for t in dash.service.tasks}),
        tasks=sorted(t.name for t in dash.service.tasks),
        first=cursor is None,
        window=SEARCH_WINDOW,
        actions=[a for a in ("retry", "cancel", "delete") if viewer.may("POST", f"/jobs/bulk/{a}")],
        nav="jobs",
    )


async def job(request: Request) -> Response:
    dash = dashboard(request)
    job_id = request.path_params["job_id"]
    viewer = await dash.sessions.viewer(request, "GET", f"/jobs/{job_id}")
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    found = await dash.service.jobs.get(job_id)
    attempts = None
    if viewer.may("GET", f"/jobs/{job_id}/attempts"):
        attempts = await dash.service.jobs.attempts(job_id)
    return dash.render(request, viewer, "job.html", job=found, attempts=attempts, nav="jobs")


async def queues(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/queues")
    return dash.render(
        request,
        viewer,
        "queues.html",
        stats=await dash.service.flow.queue_stats(),
        nav="queues",
    )


async def workers(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/workers")
    running = await dash.service.jobs.page(
        JobFilter(statuses=frozenset({JobStatus.PROCESSING})), RUNNING_SHOWN, None
    )
    by_worker = defaultdict(list)
    for found in running.jobs:
        by_worker[found.worker_id].append(found)
    return dash.render(
        request,
        viewer,
        "workers.html",
        workers=await dash.service.workers(),
        running=by_worker,
        nav="workers",
    )


async def tasks(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/tasks")
    return dash.render(request, viewer, "tasks.html", tasks=list(dash.service.tasks), nav="tasks")


async def task(request: Request) -> Response:
    """A task's schema and its submit form."""
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/tasks")
    name = request.path_params["name"]
    if name not in dash.service.tasks:
        raise HTTPException(404, "no such task")
    found = dash.service.tasks.get(name)
    form = SubmitForm(form_fields(found.payload_schema()))
    return dash.render(request, viewer, "task.html", task=found, form=form, nav="tasks")


async def schedules(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/schedules")
    return dash.render(
        request,
        viewer,
        "schedules.html",
        schedules=await dash.service.schedules.all(),
        nav="schedules",
    )
