"""The submits' lean path (http/lean.py) and their hand-read Idempotency-Key: the answers FastAPI's
handler gave, and FastAPI's own handler, with its operation spans, when its telemetry is on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobhandler import App, Settings
from jobhandler.http.api import create_app
from jobhandler.http.lean import lean
from jobhandler.observe import tracing

TOO_LONG = {
    "loc": ["header", "Idempotency-Key"],
    "msg": "String should have at most 255 characters",
    "type": "string_too_long",
}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = App(default_task="noop")

    @app.task
    async def noop(i: int) -> None:
        """Never run: nothing here starts a worker."""

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'lean.db'}")
    async with app.connected(settings):
        transport = httpx.ASGITransport(create_app(app, settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.mark.parametrize("path", ["/jobs", "/jobs/batch"])
async def test_an_idempotency_key_over_255_characters_is_a_422_before_the_body(
    http: httpx.AsyncClient, path: str
) -> None:
    answer = await http.post(
        path,
        content=b"not JSON",
        headers={"Idempotency-Key": "k" * 256, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["errors"] == [TOO_LONG]
    assert problem["detail"] == "header.Idempotency-Key: String should have at most 255 characters"


async def test_an_idempotency_key_of_255_characters_is_taken_and_replayed(
    http: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "k" * 255}
    made = await http.post("/jobs", json={"payload": 1}, headers=headers)
    again = await http.post("/jobs", json={"payload": 1}, headers=headers)
    assert (made.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == made.json()["id"]


def test_lean_refuses_a_route_fastapi_must_solve_parameters_for() -> None:
    router = APIRouter()

    @router.get("/things")
    async def things(request: Request, limit: int = 10) -> Response:
        return Response()

    with pytest.raises(ValueError, match="parameters"):
        lean(router, things)


_EXPORTER = InMemorySpanExporter()
_ATTACHED: list[TracerProvider] = []


def _spans() -> InMemorySpanExporter:
    # A process has one global provider, set once: the first test to need it sets it (another
    # module's test may have), and this module's exporter joins it.
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        tracing.provider_changed()
    if provider not in _ATTACHED:
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _ATTACHED.append(provider)
    _EXPORTER.clear()
    return _EXPORTER


@pytest.mark.parametrize(
    ("path", "body"),
    [("/jobs", {"payload": 1}), ("/jobs/batch", {"jobs": [{"payload": 1}]})],
)
async def test_fastapi_traces_the_submits_operations_when_its_telemetry_is_on(
    http: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    spans = _spans()
    assert (await http.post(path, json=body)).status_code == 201
    by_name = {s.name: s for s in spans.get_finished_spans()}
    request, endpoint = by_name[f"POST {path}"], by_name["fastapi.endpoint"]
    send = by_name["send default"]  # the submit's span (tracing.py), inside FastAPI's
    assert endpoint.parent is not None and endpoint.parent.span_id == request.context.span_id
    assert send.parent is not None and send.parent.span_id == endpoint.context.span_id
    spans.clear()
