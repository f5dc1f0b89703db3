"""Tasks: what this server's app can run, with the JSON Schema of each payload and result."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from jobhandler.client.wire import TaskOut, tasks_json
from jobhandler.http.inputs import served
from jobhandler.http.openapi import EVERY, problems

router = APIRouter(tags=["tasks"])


@router.get(
    "/tasks",
    response_model=list[TaskOut],
    summary="Registered tasks and their schemas",
    operation_id="listTasks",
    responses=problems(*EVERY),
)
async def list_tasks(request: Request) -> Response:
    service = served(request)
    return Response(tasks_json(list(service.tasks)), media_type="application/json")
