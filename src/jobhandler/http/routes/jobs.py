"""Jobs: submit one or a batch, list, get (optionally waiting), cancel, retry, delete; the last
three also for every job a filter matches (bulk)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from jobhandler.client.wire import (
    BatchOut,
    BulkOut,
    JobOut,
    SkippedOut,
    batch_json,
    job_json,
    jobs_json,
)
from jobhandler.http.inputs import (
    MOMENT_SCHEMA,
    BulkFilterIn,
    Cursor,
    JobId,
    bulk_filter,
    check_filters,
    idempotency_header,
    idempotency_key,
    moment,
    next_link,
    read_json,
    served,
    served_settings,
    submit_request,
    submit_requests,
)
from jobhandler.http.lean import lean
from jobhandler.http.openapi import STORE, job_links, problems
from jobhandler.http.problems import Problem
from jobhandler.model.jobs import JobStatus
from jobhandler.model.records import BulkAction, JobFilter
from jobhandler.model.validation import FILTER_MAX_LENGTH
from jobhandler.service.submits import MAX_BATCH, Submitted, batch_sized

CANCEL_WAIT = 5.0  # how long a cancel of a running job waits for its worker to stop it
JSON = "application/json"
# Names the queues of a submit that no live worker serves (service/flow.py): the jobs wait.
UNSERVED = "X-Jobhandler-Unserved-Queues"

router = APIRouter(tags=["jobs"])

# Checked by the handler (a 422 or 400 with a clear message); declared here for the description.
FilterText = Annotated[
    str | None,
    Query(json_schema_extra={"pattern": "^[^\\u0000]*$", "maxLength": FILTER_MAX_LENGTH}),
]
WorkflowFilterId = Annotated[
    str | None,
    Query(
        description="only the jobs of this workflow",
        json_schema_extra={"pattern": "^[^\\u0000]*$", "maxLength": FILTER_MAX_LENGTH},
    ),
]
Wait = Annotated[float, Query(ge=0, le=60, description="seconds to hold until terminal")]
CreatedBefore = Annotated[
    str | None,
    Query(description="only jobs submitted before this time", json_schema_extra=MOMENT_SCHEMA),
]
IDEMPOTENT = (
    "An `Idempotency-Key` header (1 to 255 printable characters) makes a retry safe: the same"
    " key and body within the retention window (24 h) answer as the first request did, with"
    " its jobs as they stand now and `Idempotent-Replayed: true`, and store nothing; the same"
    " key with another body is a 422. Keys belong to the token that sent them."
)
DUPLICATE = "a job with this unique_key exists already: that job (nothing was created)"
REPLAYED = "Idempotent-Replayed"  # set on an answer replayed for a repeated Idempotency-Key
_FILTER = BulkFilterIn.model_json_schema(ref_template="#/components/schemas/{model}")


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    summary="Submit a job",
    description=IDEMPOTENT,
    operation_id="createJob",
    responses={
        200: {"description": DUPLICATE, "model": JobOut, "links": job_links()},
        201: {
            "description": "the job, committed",
            "links": job_links(),
            "headers": {
                UNSERVED: {
                    "description": "queues no live worker serves",
                    "schema": {"type": "string"},
                }
            },
        },
        **problems(*STORE, 404, 413, 415, 422),
    },
)
async def create_job(request: Request) -> Response:
    service, settings = served(request), served_settings(request)
    idempotency = idempotency_header(request)  # checked before the body, as FastAPI did
    body = await read_json(request, settings)
    submit = submit_request(body, [])
    key = idempotency_key(request, idempotency, body)
    done = await service.submits.submit_checked(
        lambda now: [service.submits.new_job(submit, now)], batch=False, key=key
    )
    if not done.jobs:  # replayed, and its job was deleted since
        raise Problem(404, "the job this Idempotency-Key created was deleted")
    (job,) = done.jobs
    headers = {"Location": f"/jobs/{job.id}", **_replayed(done)}
    if unserved := await service.flow.unserved([job.queue]):  # the job waits for a worker
        headers[UNSERVED] = ", ".join(unserved)
    return Response(job_json(job), status_code=done.status, media_type=JSON, headers=headers)


def _replayed(done: Submitted) -> dict[str, str]:
    return {REPLAYED: "true"} if done.replayed else {}


@router.post(
    "/jobs/batch",
    status_code=201,
    response_model=BatchOut,
    summary="Submit up to 1,000 jobs, all or none",
    description=IDEMPOTENT,
    operation_id="createJobs",
    responses={
        200: {"description": "every job was a duplicate", "model": BatchOut},
        201: {"description": "the jobs, committed; `duplicates` names those that were there"},
        **problems(*STORE, 413, 415, 422),
    },
)
async def create_jobs(request: Request) -> Response:
    service, settings = served(request), served_settings(request)
    idempotency = idempotency_header(request)  # checked before the body, as FastAPI did
    body = await read_json(request, settings)
    new = submit_requests(service, body)
    key = idempotency_key(request, idempotency, body)
    done = await service.submits.submit_checked(
        lambda now: batch_sized(new, MAX_BATCH), batch=True, key=key
    )
    unserved = await service.flow.unserved({j.queue for j in done.jobs})
    headers = {UNSERVED: ", ".join(unserved)} if unserved else {}
    return Response(
        batch_json(done.jobs, done.created),
        status_code=done.status,
        media_type=JSON,
        headers={**headers, **_replayed(done)},
    )


# The two submits: no parameters for FastAPI to solve, so none of its per-request machinery.
lean(router, create_job)
lean(router, create_jobs)


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
    created_before: CreatedBefore = None,
    workflow_id: WorkflowFilterId = None,
) -> Response:
    check_filters(queue=queue, task=task, workflow_id=workflow_id)
    service = served(request)
    where = JobFilter(
        statuses=frozenset(status or ()),
        queue=queue,
        task=task,
        created_before=moment(created_before, "created_before"),
        workflow_id=workflow_id,
    )
    try:
        page = await service.jobs.page(where, limit, cursor)
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    headers = next_link(request, page.next_cursor)
    return Response(jobs_json(page.jobs), media_type=JSON, headers=headers)


# Before /jobs/{job_id}/cancel and the rest: "bulk" is not a job id.
@router.post(
    "/jobs/bulk/{action}",
    response_model=BulkOut,
    summary="Cancel, retry or delete every job that matches a filter",
    description="In short batches, each job through its own guarded transition: a cancel"
    " flags running jobs for their workers, a retry takes failed and cancelled jobs, a delete"
    " finished ones; other jobs are left as they are. A retry also leaves a job whose"
    " `unique_key` another job holds (as `POST /jobs/{id}/retry` refuses it) and names it,"
    " with its holder, in `skipped`.",
    operation_id="bulkJobs",
    responses=problems(*STORE, 413, 415, 422),
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": _FILTER}}}},
)
async def bulk_jobs(request: Request, action: BulkAction) -> Response:
    service, settings = served(request), served_settings(request)
    where = bulk_filter(await read_json(request, settings))
    done = await service.jobs.bulk(action, where)
    out = BulkOut(action=action, count=done.count)
    if action == "retry":
        out.skipped = [SkippedOut(id=job_id, holder=holder) for job_id, holder in done.skipped]
        out.skipped_count = done.skipped_count
    return Response(out.model_dump_json(exclude_none=True), media_type=JSON)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="Get a job",
    operation_id="getJob",
    responses=problems(*STORE, 404, 422),
)
async def get_job(request: Request, job_id: JobId, wait: Wait = 0) -> Response:
    service = served(request)
    job = await (service.jobs.wait(job_id, wait) if wait else service.jobs.get(job_id))
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
    service = served(request)
    job = await service.jobs.cancel(job_id, wait=CANCEL_WAIT)
    status = 200 if job.status.terminal else 202
    return Response(job_json(job), status_code=status, media_type=JSON)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobOut,
    summary="Run a failed or cancelled job again",
    description="Refused (409) while another job holds the job's `unique_key`, as a submit of"
    " the key would be answered with it: a waiting or running job with the key, or with"
    " `unique_for`, the job whose window holds it. The problem names it in `holder`.",
    operation_id="retryJob",
    responses=problems(*STORE, 404, 409, 415, 422),
)
async def retry_job(request: Request, job_id: JobId) -> Response:
    service = served(request)
    return Response(job_json(await service.jobs.retry(job_id)), media_type=JSON)


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    summary="Delete a finished job",
    operation_id="deleteJob",
    responses=problems(*STORE, 404, 409, 415, 422),
)
async def delete_job(request: Request, job_id: JobId) -> Response:
    service = served(request)
    await service.jobs.delete(job_id)
    return Response(status_code=204)
