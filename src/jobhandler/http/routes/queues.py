"""Queues: how many jobs each holds, by status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from jobhandler.http.inputs import served_app
from jobhandler.http.openapi import STORE, problems
from jobhandler.http.schemas import QueueOut, queues_json

router = APIRouter(tags=["queues"])


@router.get(
    "/queues",
    response_model=list[QueueOut],
    summary="Job counts by queue and status",
    operation_id="listQueues",
    responses=problems(*STORE),
)
async def list_queues(request: Request) -> Response:
    app = served_app(request)
    return Response(queues_json(await app.queue_stats()), media_type="application/json")
