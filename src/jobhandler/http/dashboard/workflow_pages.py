"""The workflow pages: the list (newest first, keyset pages as the jobs list) and one
workflow, its graph drawn on the server (graph.py) above a paged table of its jobs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from jobhandler.http.dashboard import graph
from jobhandler.http.dashboard.web import dashboard
from jobhandler.model.errors import InvalidJob
from jobhandler.model.jobs import JobStatus
from jobhandler.model.validation import filter_error, is_job_id
from jobhandler.model.workflows import WorkflowFilter, WorkflowStatus
from jobhandler.service.workflows import WorkflowNotFound

PAGE_SIZE = 50  # workflows in the list, and jobs in a workflow's table


def _filter(request: Request) -> tuple[WorkflowFilter, dict[str, str]]:
    params = {k: request.query_params.get(k, "") for k in ("status", "name")}
    errors = []
    if params["name"] and (problem := filter_error(params["name"], ["query", "name"])):
        errors.append(problem)
    if params["status"] and params["status"] not in set(WorkflowStatus):
        errors.append({"loc": ["query", "status"], "msg": "not a status", "type": "enum"})
    if errors:
        raise InvalidJob(f"{'.'.join(map(str, errors[0]['loc']))}: {errors[0]['msg']}", errors)
    statuses = frozenset({WorkflowStatus(params["status"])}) if params["status"] else frozenset()
    return WorkflowFilter(statuses=statuses, name=params["name"] or None), params


async def workflows(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/workflows")
    where, params = _filter(request)
    cursor = request.query_params.get("cursor") or None
    try:
        page = await dash.service.workflows.page(where, PAGE_SIZE, cursor)
    except ValueError as exc:  # a cursor that is not one
        raise InvalidJob(str(exc), []) from None
    return dash.render(
        request,
        viewer,
        "workflows.html",
        page=page,
        params=params,
        statuses=list(WorkflowStatus),
        job_statuses=list(JobStatus),
        first=cursor is None,
        nav="workflows",
    )


async def workflow(request: Request) -> Response:
    dash = dashboard(request)
    workflow_id = request.path_params["workflow_id"]
    viewer = await dash.sessions.viewer(request, "GET", f"/workflows/{workflow_id}")
    if not is_job_id(workflow_id):
        raise WorkflowNotFound(workflow_id)
    found = await dash.service.workflows.get(workflow_id)
    at = request.query_params.get("at", "0")
    start = int(at) if at.isdigit() else 0
    start = min(start, max(len(found.jobs) - 1, 0)) // PAGE_SIZE * PAGE_SIZE
    grouped = graph.layers(found.jobs)
    ordered = [job for column in grouped for job in column]  # as drawn
    return dash.render(
        request,
        viewer,
        "workflow.html",
        workflow=found,
        drawing=graph.draw(found.jobs, grouped=grouped),
        # A cancelled workflow's running jobs end after it: the page follows them until then.
        settled=all(job.status.terminal for job in found.jobs),
        box=(graph.BOX_WIDTH, graph.BOX_HEIGHT),
        rows=ordered[start : start + PAGE_SIZE],
        start=start,
        page_size=PAGE_SIZE,
        job_statuses=list(JobStatus),
        nav="workflows",
    )
