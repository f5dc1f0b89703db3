"""Workflows: submit a graph of jobs (all or none), read one or a page, cancel one.

The body is read at the edge as a submit's is (inputs.read_json: the size limit, standard
JSON only, the depth limit), then checked whole: every job against its task, the graph
against itself. Any refusal names each bad field and stores nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from jobhandler.client.wire import WorkflowOut, WorkflowSummaryOut, workflow_json, workflows_json
from jobhandler.http.inputs import (
    Cursor,
    check_filters,
    next_link,
    pydantic_errors,
    read_json,
    served,
    served_settings,
)
from jobhandler.http.openapi import STORE, problems, workflow_links
from jobhandler.http.problems import Problem
from jobhandler.model.validation import FILTER_MAX_LENGTH, is_job_id
from jobhandler.model.workflows import WorkflowFilter, WorkflowRequest, WorkflowStatus
from jobhandler.service.workflows import WorkflowNotFound

JSON = "application/json"
_MISSING = "Field required"  # pydantic's words for a member left out

router = APIRouter(tags=["workflows"])


async def workflow_id_param(workflow_id: str) -> str:
    """A workflow id from the path (made as a job's is): one that cannot be one is not found
    without asking a store."""
    if not is_job_id(workflow_id):
        raise WorkflowNotFound(workflow_id)
    return workflow_id


WorkflowId = Annotated[str, Depends(workflow_id_param)]
NameFilter = Annotated[
    str | None,
    Query(
        description="only workflows of this name",
        json_schema_extra={"pattern": "^[^\\u0000]*$", "maxLength": FILTER_MAX_LENGTH},
    ),
]
SUBMIT = (
    "Every job of the graph, stored in one transaction: a job runs once the jobs it names in"
    " `after` (by key) are settled, and is `waiting` until then. Refused whole (422, each"
    ' problem named in `errors` at `["jobs", i, ...]`) for a cycle, a key used twice, a key'
    " in `after` that no job has, an unknown task or a bad payload or option; 409 while another"
    " job holds a job's `unique_key` (`holders` names them). Nothing is stored on a refusal."
)


def workflow_request(body: Any) -> WorkflowRequest:
    """``POST /workflows``'s body: 400 unless a JSON object; 422 naming every bad field, a job
    without a ``payload`` among them (a submit needs one), at ``["jobs", i, ...]`` as a batch
    names its jobs' fields."""
    if not isinstance(body, dict):
        raise Problem(400, "request body must be a JSON object with a name and a jobs array")
    errors: list[dict[str, Any]] = []
    try:
        request = WorkflowRequest.model_validate(body)
    except pydantic.ValidationError as exc:
        errors = pydantic_errors(exc)
    jobs = body.get("jobs")
    for index, job in enumerate(jobs if isinstance(jobs, list) else []):
        if isinstance(job, dict) and "payload" not in job:
            errors.append({"loc": ["jobs", index, "payload"], "msg": _MISSING, "type": "missing"})
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        where = ".".join(map(str, first["loc"]))
        message = f"{where}: {first['msg']}{more}; nothing was stored"
        raise Problem(422, message, errors=errors)
    return request


@router.post(
    "/workflows",
    status_code=201,
    response_model=WorkflowOut,
    summary="Submit a workflow: jobs that run after other jobs, all or none",
    description=SUBMIT,
    operation_id="createWorkflow",
    responses={
        201: {"description": "the workflow, committed", "links": workflow_links()},
        **problems(*STORE, 409, 413, 415, 422),
    },
)
async def create_workflow(request: Request) -> Response:
    service, settings = served(request), served_settings(request)
    submitted = workflow_request(await read_json(request, settings))
    view = await service.workflows.submit(submitted)
    headers = {"Location": f"/workflows/{view.id}"}
    return Response(workflow_json(view), status_code=201, media_type=JSON, headers=headers)


@router.get(
    "/workflows",
    response_model=list[WorkflowSummaryOut],
    summary="List workflows, newest first, each with its jobs' counts by status",
    operation_id="listWorkflows",
    responses=problems(*STORE, 422),
)
async def list_workflows(
    request: Request,
    status: Annotated[list[WorkflowStatus] | None, Query()] = None,
    name: NameFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Cursor = None,
) -> Response:
    check_filters(name=name)
    service = served(request)
    where = WorkflowFilter(statuses=frozenset(status or ()), name=name)
    try:
        page = await service.workflows.page(where, limit, cursor)
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    headers = next_link(request, page.next_cursor)
    return Response(workflows_json(page), media_type=JSON, headers=headers)


@router.get(
    "/workflows/{workflow_id}",
    response_model=WorkflowOut,
    summary="Get a workflow and its jobs",
    operation_id="getWorkflow",
    responses=problems(*STORE, 404, 422),
)
async def get_workflow(request: Request, workflow_id: WorkflowId) -> Response:
    view = await served(request).workflows.get(workflow_id)
    return Response(workflow_json(view), media_type=JSON)


@router.post(
    "/workflows/{workflow_id}/cancel",
    response_model=WorkflowOut,
    summary="Cancel a workflow: every job of it that has not finished",
    description="Waiting, queued and scheduled jobs are cancelled at once; a running job's"
    " worker is asked to stop it (as `POST /jobs/{id}/cancel`), so the answer may show it"
    " running still. Cancelling a cancelled workflow changes nothing.",
    operation_id="cancelWorkflow",
    responses=problems(*STORE, 404, 415, 422),
)
async def cancel_workflow(request: Request, workflow_id: WorkflowId) -> Response:
    view = await served(request).workflows.cancel(workflow_id)
    return Response(workflow_json(view), media_type=JSON)
