"""Workers: the live ones, what they serve and how busy they are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from jobhandler.client.wire import WorkerOut, workers_json
from jobhandler.http.inputs import served
from jobhandler.http.openapi import STORE, problems

router = APIRouter(tags=["workers"])


@router.get(
    "/workers",
    response_model=list[WorkerOut],
    summary="Live workers",
    operation_id="listWorkers",
    responses=problems(*STORE),
)
async def list_workers(request: Request) -> Response:
    service = served(request)
    return Response(workers_json(await service.workers()), media_type="application/json")
