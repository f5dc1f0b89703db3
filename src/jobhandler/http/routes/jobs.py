"""Jobs: submit one or a batch, list, get (optionally waiting), cancel, retry, delete."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from jobhandler.http.inputs import (
    JobId,
    check_filters,
    read_json,
    served_app,
    served_settings,
    submit_request,
    submit_requests,
)
from jobhandler.http.openapi import STORE, job_links, problems
from jobhandler.http.problems import Problem
from jobhandler.http.schemas import BatchOut, JobOut, batch_json, job_json, jobs_json
from jobhandler.jobs import JobStatus
from jobhandler.store.base import CURSOR_PATTERN, JobFilter
from jobhandler.validation import FILTER_MAX_LENGTH

CANCEL_WAIT = 5.0  # how long a cancel of a running job waits for its worker to stop it
JSON = "application/json"

router = APIRouter(tags=["jobs"])

# Checked by the handler (a 422 or 400 with a clear message); declared here for the description.
FilterText = Annotated[
    str | None,
    Query(json_schema_extra={"pattern": "^[^\\u0000]*$", "maxLength": FILTER_MAX_LENGTH}),
]
Cursor = Annotated[
    str | None,
    Query(
        description="from the `next` link of the previous page",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]
Wait = Annotated[float, Query(ge=0, le=60, description="seconds to hold until terminal")]


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    summary="Submit a job",
    operation_id="createJob",
    responses={
        201: {"description": "the job, committed", "links": job_links()},
        **problems(*STORE, 413, 415, 422),
    },
)
async def create_job(request: Request) -> Response:
    app, settings = served_app(request), served_settings(request)
    job = await app.submit(submit_request(await read_json(request, settings), []))
    return Response(
        job_json(job), status_code=201, media_type=JSON, headers={"Location": f"/jobs/{job.id}"}
    )


@router.post(
    "/jobs/batch",
    status_code=201,
    response_model=BatchOut,
    summary="Submit up to 1,000 jobs, all or none",
    operation_id="createJobs",
    responses=problems(*STORE, 413, 415, 422),
)
async def create_jobs(request: Request) -> Response:
    app, settings = served_app(request), served_settings(request)
    requests = submit_requests(app, await read_json(request, settings))
    jobs = await app.submit_many(requests)
    return Response(batch_json(jobs), status_code=201, media_type=JSON)


@router.get(
    "/jobs",
    response_model=list[JobOut],
    summary="List jobs, newest first",
    operation_id="listJobs",
    responses=problems(*STORE, 422),
)
async def list_jobs(
    request: Request,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    queue: FilterText = None,
    task: FilterText = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
) -> Response:
    check_filters(queue=queue, task=task)
    app = served_app(request)
    where = JobFilter(statuses=frozenset(status or ()), queue=queue, task=task)
    try:
        page = await app.list_jobs(where, limit, cursor)
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    headers = {}
    if page.next_cursor:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        query.append(("cursor", page.next_cursor))
        headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return Response(jobs_json(page.jobs), media_type=JSON, headers=headers)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="Get a job",
    operation_id="getJob",
    responses=problems(*STORE, 404, 422),
)
async def get_job(request: Request, job_id: JobId, wait: Wait = 0) -> Response:
    app = served_app(request)
    job = await (app.wait_for_job(job_id, wait) if wait else app.get_job(job_id))
    return Response(job_json(job), media_type=JSON)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job",
    operation_id="cancelJob",
    responses={
        200: {"description": "cancelled"},
        202: {"description": "running; its worker has been asked to stop it", "model": JobOut},
        **problems(*STORE, 404, 409, 415, 422),
    },
)
async def cancel_job(request: Request, job_id: JobId) -> Response:
    app = served_app(request)
    job = await app.cancel_job(job_id, wait=CANCEL_WAIT)
    status = 200 if job.status.terminal else 202
    return Response(job_json(job), status_code=status, media_type=JSON)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobOut,
    summary="Run a failed or cancelled job again",
    operation_id="retryJob",
    responses=problems(*STORE, 404, 409, 415, 422),
)
async def retry_job(request: Request, job_id: JobId) -> Response:
    app = served_app(request)
    return Response(job_json(await app.retry_job(job_id)), media_type=JSON)


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    summary="Delete a finished job",
    operation_id="deleteJob",
    responses=problems(*STORE, 404, 409, 415, 422),
)
async def delete_job(request: Request, job_id: JobId) -> Response:
    app = served_app(request)
    await app.delete_job(job_id)
    return Response(status_code=204)
