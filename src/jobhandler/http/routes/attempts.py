"""A job's attempt history: every run, with its worker, times, outcome, error and traceback."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from jobhandler.client.wire import AttemptOut, attempts_json
from jobhandler.http.inputs import JobId, served
from jobhandler.http.openapi import STORE, problems

router = APIRouter(tags=["jobs"])


@router.get(
    "/jobs/{job_id}/attempts",
    response_model=list[AttemptOut],
    summary="Every run of a job, oldest first (the one in progress last)",
    operation_id="listJobAttempts",
    responses=problems(*STORE, 404, 422),
)
async def list_attempts(request: Request, job_id: JobId) -> Response:
    service = served(request)
    return Response(
        attempts_json(await service.jobs.attempts(job_id)), media_type="application/json"
    )
