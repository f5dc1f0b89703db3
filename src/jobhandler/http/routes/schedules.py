"""Schedules: the periodic jobs the workers run (``@app.periodic``), paused and resumed here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from jobhandler.client.wire import ScheduleOut, schedule_json, schedules_json
from jobhandler.http.inputs import served
from jobhandler.http.openapi import STORE, problems
from jobhandler.http.problems import Problem
from jobhandler.model.schedules import ScheduleNotFound
from jobhandler.model.validation import NAME_MAX_LENGTH, NAME_PATTERN

JSON = "application/json"

router = APIRouter(tags=["schedules"])

ScheduleName = Annotated[str, Path(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]
_ACTION_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **problems(*STORE, 415, 422),
    404: {**problems(404)[404], "description": "no such schedule"},
}


@router.get(
    "/schedules",
    response_model=list[ScheduleOut],
    summary="Periodic schedules, with their next run",
    operation_id="listSchedules",
    responses=problems(*STORE),
)
async def list_schedules(request: Request) -> Response:
    service = served(request)
    return Response(schedules_json(await service.schedules.all()), media_type=JSON)


@router.post(
    "/schedules/{name}/pause",
    response_model=ScheduleOut,
    summary="Pause a schedule: its due times pass without jobs until it is resumed",
    operation_id="pauseSchedule",
    responses=_ACTION_PROBLEMS,
)
async def pause_schedule(request: Request, name: ScheduleName) -> Response:
    return await _act(request, name, pause=True)


@router.post(
    "/schedules/{name}/resume",
    response_model=ScheduleOut,
    summary="Resume a paused schedule from its next due time",
    operation_id="resumeSchedule",
    responses=_ACTION_PROBLEMS,
)
async def resume_schedule(request: Request, name: ScheduleName) -> Response:
    return await _act(request, name, pause=False)


async def _act(request: Request, name: str, *, pause: bool) -> Response:
    service = served(request)
    try:
        schedule = await (
            service.schedules.pause(name) if pause else service.schedules.resume(name)
        )
    except ScheduleNotFound as exc:
        raise Problem(404, str(exc)) from None
    return Response(schedule_json(schedule), media_type=JSON)
