"""The HTTP API. ``create_app(app)`` closes over one App; there is no module state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

import pydantic
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from jobhandler.app import MAX_BATCH, App, SubmitRequest
from jobhandler.errors import InvalidJob, JobNotFound
from jobhandler.http.auth import install_access_control
from jobhandler.http.openapi import (
    EVERY,
    STORE,
    BatchOut,
    HealthOut,
    QueueOut,
    ReadyOut,
    WorkerOut,
    batch_schema,
    job_links,
    problems,
    submit_schema,
)
from jobhandler.http.problems import Problem, install_error_handlers
from jobhandler.http.schemas import JobOut, TaskOut, job_out, queue_out, task_out, worker_out
from jobhandler.jobs import JobStatus
from jobhandler.settings import Settings
from jobhandler.store.base import JobFilter
from jobhandler.store.common import CURSOR_PATTERN
from jobhandler.validation import FILTER_MAX_LENGTH, filter_error, is_job_id

CANCEL_WAIT = 5.0  # how long a cancel of a running job waits for its worker to stop it


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


def _refuse_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``: Python's JSON reader takes them, JSON does not."""
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes, max_depth: int) -> Any:
    """A request body as JSON: 400 if it is not standard JSON, 422 if it nests too deep."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:  # the parser's own limit, far past any payload we would take
        message = f"request body nests deeper than {max_depth} levels"
        raise Problem(
            422, message, errors=[{"loc": [], "msg": message, "type": "json_too_deep"}]
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"request body is not valid JSON: {_first_line(exc)}") from None


def check_filters(**filters: str | None) -> None:
    """``?queue=`` and ``?task=``: text a store can compare (no NUL, valid Unicode), or 422."""
    errors = [
        problem
        for name, value in filters.items()
        if value is not None and (problem := filter_error(value, ["query", name])) is not None
    ]
    if errors:
        first = errors[0]
        raise Problem(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", errors=errors)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def job_id_param(job_id: str) -> str:
    """A job id from the path; one that cannot be a job's is not found without asking a store."""
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    return job_id


def create_app(app: App, settings: Settings | None = None) -> FastAPI:
    """The FastAPI application for ``app``. If ``app`` is not connected when the server
    starts, it connects with ``settings`` for the server's lifetime."""
    settings = settings or app.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            app.store  # noqa: B018 - connected already (the CLI does it)?
        except RuntimeError:
            async with app.connected(settings):
                yield
        else:
            yield

    api = FastAPI(
        title="Job Handler",
        summary="Submit, watch and steer background jobs.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(api)
    install_access_control(api, app, settings)

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise Problem(413, f"request body is over {settings.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                raise Problem(413, f"request body is over {settings.max_body_bytes} bytes")
        return parse_json(bytes(body), settings.max_json_depth)

    def submit_request(body: Any, where: list[str | int]) -> SubmitRequest:
        if not isinstance(body, dict) or "payload" not in body:
            raise Problem(
                400,
                "request body must be a JSON object with a payload field",
                pointer="/" + "/".join(map(str, where)),
            )
        try:
            return SubmitRequest.model_validate(body)
        except pydantic.ValidationError as exc:
            errors = [
                {"loc": [*where, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            first = errors[0]
            raise Problem(
                422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", errors=errors
            ) from None

    job_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": submit_schema(app)}},
        }
    }

    @api.post(
        "/jobs",
        status_code=201,
        response_model=JobOut,
        openapi_extra=job_body,
        summary="Submit a job",
        operation_id="createJob",
        responses={
            201: {"description": "the job, committed", "links": job_links()},
            **problems(*STORE, 413, 415, 422),
        },
    )
    async def create_job(request: Request) -> Response:
        job = await app.submit(submit_request(await read_json(request), []))
        return JSONResponse(job_out(job), status_code=201, headers={"Location": f"/jobs/{job.id}"})

    batch_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": batch_schema(app, MAX_BATCH)}},
        }
    }

    @api.post(
        "/jobs/batch",
        status_code=201,
        response_model=BatchOut,
        openapi_extra=batch_body,
        summary="Submit up to 1,000 jobs, all or none",
        operation_id="createJobs",
        responses=problems(*STORE, 413, 415, 422),
    )
    async def create_jobs(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            raise Problem(400, "request body must be a JSON object with a jobs array")
        requests: list[SubmitRequest] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(body["jobs"]):
            try:
                requests.append(submit_request(item, ["jobs", index]))
            except Problem as exc:
                errors.extend(
                    exc.extra.get("errors")
                    or [{"loc": ["jobs", index], "msg": str(exc), "type": "invalid"}]
                )
                continue
            try:  # name every bad job in one answer, not only those of the first kind
                app.new_job(requests[-1], app.clock())
            except InvalidJob as exc:
                errors.extend(exc.at("jobs", index))
        if errors:
            raise Problem(
                422, f"{len(errors)} errors in the batch; nothing was stored", errors=errors
            )
        jobs = await app.submit_many(requests)
        return JSONResponse({"jobs": [job_out(j) for j in jobs]}, status_code=201)

    @api.get(
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
        return JSONResponse([job_out(j) for j in page.jobs], headers=headers)

    @api.get(
        "/jobs/{job_id}",
        response_model=JobOut,
        summary="Get a job",
        operation_id="getJob",
        responses=problems(*STORE, 404, 422),
    )
    async def get_job(
        job_id: Annotated[str, Depends(job_id_param)],
        wait: Annotated[
            float, Query(ge=0, le=60, description="seconds to hold until terminal")
        ] = 0,
    ) -> Response:
        job = await (app.wait_for_job(job_id, wait) if wait else app.get_job(job_id))
        return JSONResponse(job_out(job))

    @api.post(
        "/jobs/{job_id}/cancel",
        response_model=JobOut,
        summary="Cancel a job",
        operation_id="cancelJob",
        responses={
            202: {
                "description": "running; its worker has been asked to stop it",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/JobOut"}}
                },
            },
            **problems(*STORE, 404, 409, 415, 422),
        },
    )
    async def cancel_job(job_id: Annotated[str, Depends(job_id_param)]) -> Response:
        job = await app.cancel_job(job_id, wait=CANCEL_WAIT)
        return JSONResponse(job_out(job), status_code=200 if job.status.terminal else 202)

    @api.post(
        "/jobs/{job_id}/retry",
        response_model=JobOut,
        summary="Run a failed or cancelled job again",
        operation_id="retryJob",
        responses=problems(*STORE, 404, 409, 415, 422),
    )
    async def retry_job(job_id: Annotated[str, Depends(job_id_param)]) -> Response:
        return JSONResponse(job_out(await app.retry_job(job_id)))

    @api.delete(
        "/jobs/{job_id}",
        status_code=204,
        summary="Delete a finished job",
        operation_id="deleteJob",
        responses=problems(*STORE, 404, 409, 415, 422),
    )
    async def delete_job(job_id: Annotated[str, Depends(job_id_param)]) -> Response:
        await app.delete_job(job_id)
        return Response(status_code=204)

    @api.get(
        "/tasks",
        response_model=list[TaskOut],
        summary="Registered tasks and their schemas",
        operation_id="listTasks",
        responses=problems(*EVERY),
    )
    async def list_tasks() -> Response:
        return JSONResponse([task_out(t) for t in app.tasks])

    @api.get(
        "/queues",
        response_model=list[QueueOut],
        summary="Job counts by queue and status",
        operation_id="listQueues",
        responses=problems(*STORE),
    )
    async def list_queues() -> Response:
        return JSONResponse([queue_out(q) for q in await app.queue_stats()])

    @api.get(
        "/workers",
        response_model=list[WorkerOut],
        summary="Live workers",
        operation_id="listWorkers",
        responses=problems(*STORE),
    )
    async def list_workers() -> Response:
        return JSONResponse([worker_out(w) for w in await app.workers()])

    @api.get(
        "/healthz",
        response_model=HealthOut,
        summary="Liveness: the process answers",
        operation_id="healthz",
        responses=problems(400, 500),
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/readyz",
        response_model=ReadyOut,
        summary="Readiness: the store answers",
        operation_id="readyz",
        responses=problems(400, 500, 503),
    )
    async def readyz() -> dict[str, str]:
        await app.store.ping()
        return {"status": "ready"}

    return api
