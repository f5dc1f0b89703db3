"""Queues: job counts by status, pause and resume, and limits changed at run time."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from jobhandler.client.wire import QueueLimitsIn, QueueOut, queue_json, queues_json
from jobhandler.http.inputs import served
from jobhandler.http.openapi import STORE, problems, queue_links
from jobhandler.http.problems import Problem
from jobhandler.model.records import QueueStats
from jobhandler.model.validation import NAME_MAX_LENGTH, NAME_PATTERN
from jobhandler.service.flow import QueueNotFound

JSON = "application/json"

router = APIRouter(tags=["queues"])

QueueName = Annotated[str, Path(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]
# 404: a queue no task, job, worker or stored limit names (flow.Flow.known); nothing is written.
_ACTION_PROBLEMS: dict[int | str, dict[str, Any]] = {
    200: {"description": "the queue, after the action", "links": queue_links()},
    **problems(*STORE, 404, 415, 422),
}


@router.get(
    "/queues",
    response_model=list[QueueOut],
    summary="Queues: job counts by status, pause, limits, and whether a live worker serves each",
    operation_id="listQueues",
    responses=problems(*STORE),
)
async def list_queues(request: Request) -> Response:
    service = served(request)
    return Response(queues_json(await service.flow.queue_stats()), media_type=JSON)


@router.patch(
    "/queues/{name}",
    response_model=QueueOut,
    summary="Change a queue's limits, over all workers (null removes one)",
    description="A member left out stays as it is. Holds until changed again, or until the "
    "code's own declaration (`app.queue(...)`) changes.",
    operation_id="updateQueue",
    responses=_ACTION_PROBLEMS,
)
async def update_queue(request: Request, name: QueueName, limits: QueueLimitsIn) -> Response:
    service = served(request)
    changed = limits.model_dump(include=limits.model_fields_set)
    return await _answer(service.flow.update(name, **changed))


@router.post(
    "/queues/{name}/pause",
    response_model=QueueOut,
    summary="Pause a queue: running jobs finish, nothing new starts (kept in the store)",
    operation_id="pauseQueue",
    responses=_ACTION_PROBLEMS,
)
async def pause_queue(request: Request, name: QueueName) -> Response:
    service = served(request)
    return await _answer(service.flow.pause(name))


@router.post(
    "/queues/{name}/resume",
    response_model=QueueOut,
    summary="Resume a paused queue",
    operation_id="resumeQueue",
    responses=_ACTION_PROBLEMS,
)
async def resume_queue(request: Request, name: QueueName) -> Response:
    service = served(request)
    return await _answer(service.flow.resume(name))


async def _answer(action: Awaitable[QueueStats]) -> Response:
    """The queue after the action; 404 for a queue nothing knows (nothing was written)."""
    try:
        return Response(queue_json(await action), media_type=JSON)
    except QueueNotFound as exc:
        raise Problem(404, str(exc)) from None
