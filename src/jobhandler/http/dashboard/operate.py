"""What an operator on call does to many jobs or a queue at once: a bulk retry, cancel or
delete of every job the jobs list's filter matches (a confirmation page with the count first,
then the POST that does it), and a queue's limits. Checked as the other actions are: the
session, the scope of the API route each stands for (``POST /jobs/bulk/{action}``,
``PATCH /queues/{name}``), the CSRF token."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from jobhandler.http.dashboard.actions import checked
from jobhandler.http.dashboard.pages import FILTERS, job_filter
from jobhandler.http.dashboard.web import dashboard, redirect
from jobhandler.model.errors import InvalidJob
from jobhandler.model.records import SEARCH_WINDOW, BulkAction, JobFilter
from jobhandler.service.bulk import ACTIONS

LIMIT_FIELDS = ("concurrency", "rate_limit", "key_concurrency", "key_rate_limit")


def _action(request: Request) -> BulkAction:
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise HTTPException(404, "no such action")
    return action  # type: ignore[no-any-return]


async def bulk_confirm(request: Request) -> Response:
    """What a bulk action would do, counted, and the button that does it."""
    dash = dashboard(request)
    action = _action(request)
    viewer = await dash.sessions.viewer(request, "POST", f"/jobs/bulk/{action}")
    where, params = job_filter(request.query_params)
    count, exact = await dash.service.jobs.count(where, action)
    return dash.render(
        request,
        viewer,
        "bulk.html",
        action=action,
        params=params,
        described=describe(where),
        count=count,
        exact=exact,
        window=SEARCH_WINDOW,
        nav="jobs",
    )


async def bulk_run(request: Request) -> Response:
    """The confirmed bulk action: what it changed, and for a retry what it skipped and why."""
    dash = dashboard(request)
    action = _action(request)
    viewer, form = await checked(request, "POST", f"/jobs/bulk/{action}")
    where, params = job_filter({k: form.get(k, "") for k in FILTERS})
    done = await dash.service.jobs.bulk(action, where)
    return dash.render(
        request,
        viewer,
        "bulk.html",
        action=action,
        params=params,
        described=describe(where),
        done=done,
        window=SEARCH_WINDOW,
        nav="jobs",
    )


def describe(where: JobFilter) -> str:
    """The filter in words, as the confirmation states it ("of queue emails, task send")."""
    parts = []
    if where.queue:
        parts.append(f"of queue {where.queue}")
    if where.task:
        parts.append(f"of task {where.task}")
    if where.id_prefix:
        parts.append(f"whose id starts with {where.id_prefix}")
    if where.search:
        parts.append(f"whose payload or error holds “{where.search}”")
    return ", ".join(parts)


async def queue_limits(request: Request) -> Response:
    """A queue's limits (its own, and per concurrency key), as ``PATCH /queues/{name}`` sets
    them (an empty
    field: no limit); a bad value is shown on the queues page, next to its field."""
    dash = dashboard(request)
    name = request.path_params["name"]
    viewer, form = await checked(request, "PATCH", f"/queues/{name}")
    sent = {k: form.get(k, "").strip() for k in LIMIT_FIELDS}
    values: dict[str, int | str | None] = {k: v or None for k, v in sent.items()}
    try:
        for field in ("concurrency", "key_concurrency"):
            if sent[field]:
                values[field] = _whole(sent[field])
        await dash.service.flow.update(name, **values)
    except InvalidJob as exc:
        errors = [str(e["msg"]) for e in exc.errors] or [str(exc)]
        stats = await dash.service.flow.queue_stats()
        return dash.render(
            request,
            viewer,
            "queues.html",
            422,
            stats=stats,
            failed={"queue": name, "errors": errors, **sent},
            nav="queues",
        )
    return redirect(request, "queues")


def _whole(text: str) -> int | str:
    """A whole number as typed; anything else as the text, for the limit's own check to name."""
    try:
        return int(text)
    except ValueError:
        return text
