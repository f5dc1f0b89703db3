"""The HTTP API. ``create_app(app)`` closes over one App; there is no module state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

import pydantic
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobhandler.app import MAX_BATCH, App, SubmitRequest
from jobhandler.errors import InvalidJob, InvalidTransition, JobNotFound, StoreUnavailable
from jobhandler.http.problems import Problem, problem_response
from jobhandler.http.schemas import JobOut, TaskOut, job_out, queue_out, task_out, worker_out
from jobhandler.jobs import JobStatus
from jobhandler.settings import Settings
from jobhandler.store.base import JobFilter

CANCEL_WAIT = 5.0  # how long a cancel of a running job waits for its worker to stop it


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
    _install_error_handlers(api)

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise Problem(413, f"request body is over {settings.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_body_bytes:
                raise Problem(413, f"request body is over {settings.max_body_bytes} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Problem(400, "request body is not valid JSON") from None

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
            "content": {"application/json": {"schema": SubmitRequest.model_json_schema()}},
        }
    }

    @api.post(
        "/jobs",
        status_code=201,
        response_model=JobOut,
        openapi_extra=job_body,
        summary="Submit a job",
    )
    async def create_job(request: Request) -> Response:
        job = await app.submit(submit_request(await read_json(request), []))
        return JSONResponse(job_out(job), status_code=201, headers={"Location": f"/jobs/{job.id}"})

    batch_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["jobs"],
                        "properties": {
                            "jobs": {
                                "type": "array",
                                "maxItems": MAX_BATCH,
                                "items": SubmitRequest.model_json_schema(),
                            }
                        },
                    }
                }
            },
        }
    }

    @api.post(
        "/jobs/batch",
        status_code=201,
        openapi_extra=batch_body,
        summary="Submit up to 1,000 jobs, all or none",
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
                app.new_job(requests[-1], 0.0)
            except InvalidJob as exc:
                errors.extend(exc.at("jobs", index))
        if errors:
            raise Problem(
                422, f"{len(errors)} errors in the batch; nothing was stored", errors=errors
            )
        jobs = await app.submit_many(requests)
        return JSONResponse({"jobs": [job_out(j) for j in jobs]}, status_code=201)

    @api.get("/jobs", response_model=list[JobOut], summary="List jobs, newest first")
    async def list_jobs(
        request: Request,
        status: Annotated[list[JobStatus] | None, Query()] = None,
        queue: str | None = None,
        task: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> Response:
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

    @api.get("/jobs/{job_id}", response_model=JobOut, summary="Get a job")
    async def get_job(
        job_id: str,
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
        responses={202: {"description": "running; its worker has been asked to stop it"}},
    )
    async def cancel_job(job_id: str) -> Response:
        job = await app.cancel_job(job_id, wait=CANCEL_WAIT)
        return JSONResponse(job_out(job), status_code=200 if job.status.terminal else 202)

    @api.post(
        "/jobs/{job_id}/retry", response_model=JobOut, summary="Run a failed or cancelled job again"
    )
    async def retry_job(job_id: str) -> Response:
        return JSONResponse(job_out(await app.retry_job(job_id)))

    @api.delete("/jobs/{job_id}", status_code=204, summary="Delete a finished job")
    async def delete_job(job_id: str) -> Response:
        await app.delete_job(job_id)
        return Response(status_code=204)

    @api.get("/tasks", response_model=list[TaskOut], summary="Registered tasks and their schemas")
    async def list_tasks() -> Response:
        return JSONResponse([task_out(t) for t in app.tasks])

    @api.get("/queues", summary="Job counts by queue and status")
    async def list_queues() -> Response:
        return JSONResponse([queue_out(q) for q in await app.queue_stats()])

    @api.get("/workers", summary="Live workers")
    async def list_workers() -> Response:
        return JSONResponse([worker_out(w) for w in await app.workers()])

    @api.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", summary="Readiness: the store answers")
    async def readyz() -> dict[str, str]:
        await app.store.ping()
        return {"status": "ready"}

    return api


def _install_error_handlers(api: FastAPI) -> None:
    async def problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, str(exc), **exc.extra)

    async def not_found(_: Request, exc: Exception) -> Response:
        return problem_response(404, str(exc))

    async def conflict(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidTransition)
        return problem_response(409, str(exc), job_status=exc.status)

    async def unprocessable(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidJob)
        return problem_response(422, str(exc), errors=exc.errors)

    async def unavailable(_: Request, exc: Exception) -> Response:
        return problem_response(503, f"store unavailable: {exc}")

    async def bad_parameters(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        message = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        return problem_response(422, message, errors=errors)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, str(exc.detail))

    api.add_exception_handler(Problem, problem)
    api.add_exception_handler(JobNotFound, not_found)
    api.add_exception_handler(InvalidTransition, conflict)
    api.add_exception_handler(InvalidJob, unprocessable)
    api.add_exception_handler(StoreUnavailable, unavailable)
    api.add_exception_handler(RequestValidationError, bad_parameters)
    api.add_exception_handler(StarletteHTTPException, http_error)
