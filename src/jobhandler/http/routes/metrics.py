"""Metrics: this process's counters and the store's gauges, for Prometheus to scrape."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from jobhandler.http.inputs import served
from jobhandler.http.openapi import STORE, problems
from jobhandler.observe import metrics

router = APIRouter(tags=["metrics"])

_TEXT = {"schema": {"type": "string", "description": "Prometheus text exposition format"}}


@router.get(
    "/metrics",
    summary="Prometheus metrics: this process's job counters, and the store's gauges",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in the format the Accept header asks for (Prometheus"
            " text by default, or OpenMetrics).",
            "content": {"text/plain": _TEXT, "application/openmetrics-text": _TEXT},
        },
        **problems(*STORE),
    },
)
async def get_metrics(request: Request) -> Response:
    service = served(request)
    gauges = metrics.StoreGauges(
        await service.flow.queue_stats(),
        await service.workers(),
        service.clock(),
        disk_full=service.store.disk_full(),
    )
    body, content_type = metrics.install(service.events).scrape(
        gauges, request.headers.get("accept")
    )
    return Response(body, media_type=content_type)
