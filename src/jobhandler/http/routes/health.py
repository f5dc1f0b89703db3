"""Health: liveness (the process answers) and readiness (its store answers)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from jobhandler.client.wire import HealthOut, ReadyOut
from jobhandler.http.inputs import served
from jobhandler.http.openapi import problems

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    summary="Liveness: the process answers",
    operation_id="healthz",
    responses=problems(400, 500),
)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Readiness: the store answers",
    operation_id="readyz",
    responses=problems(400, 500, 503),
)
async def readyz(request: Request) -> ReadyOut:
    service = served(request)
    await service.store.ping()
    # Ready even so: reads, cancels and deletes still work, and they are how room is made.
    return ReadyOut(status="ready", disk_full=service.store.disk_full())
