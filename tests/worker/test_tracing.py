"""OpenTelemetry: a submit's span and each run's span, one trace through the stored context."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jobhandler import App, JobStatus, RetryPolicy, Settings
from jobhandler.observe import tracing
from jobhandler.worker import Worker

TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # A process has one global provider, set once: the first test to need it sets it.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        tracing.provider_changed()
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[App]:
    app = App()

    @app.task(queue="mail")
    async def send(to: str) -> str:
        with trace.get_tracer("test").start_as_current_span("smtp"):
            return f"sent to {to}"

    @app.task(max_attempts=2, retry=RetryPolicy(base=0.01, max_delay=0.02, jitter=0))
    async def broken(_: None) -> None:
        raise ValueError("nope")

    settings = Settings(database_url=database_url, poll_interval=0.05)
    async with app.connected(settings):
        worker = Worker(app, settings)
        run = asyncio.create_task(worker.run())
        try:
            yield app
        finally:
            worker.stop()
            await asyncio.wait_for(run, 10)


async def test_a_request_trace_follows_its_job_into_the_worker(
    app: App, spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("test").start_as_current_span("POST /signup") as request:
        job = await app.tasks.get("send").enqueue("ada@example.com")
    done = await app.service.jobs.wait(job.id, 10)
    assert done.status is JobStatus.COMPLETED
    assert done.trace_context is not None and TRACEPARENT.fullmatch(done.trace_context)

    by_name = {s.name: s for s in spans.get_finished_spans()}
    send, process, smtp = by_name["send mail"], by_name["process mail"], by_name["smtp"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (send, process, smtp)} == {trace_id}
    assert send.parent is not None and send.parent.span_id == request.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert smtp.parent is not None and smtp.parent.span_id == process.context.span_id
    assert done.trace_context.split("-")[2] == f"{send.context.span_id:016x}"
    assert (send.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert send.attributes is not None and send.attributes["messaging.message.id"] == job.id
    assert process.attributes is not None and process.attributes["jobhandler.task"] == "send"


async def test_each_failed_run_is_an_error_span_of_the_same_trace(
    app: App, spans: InMemorySpanExporter
) -> None:
    job = await app.tasks.get("broken").enqueue(None)
    assert (await app.service.jobs.wait(job.id, 10)).status is JobStatus.FAILED
    runs = [s for s in spans.get_finished_spans() if s.name == "process default"]
    (send,) = [s for s in spans.get_finished_spans() if s.name == "send default"]
    assert sorted(s.attributes["jobhandler.attempt"] for s in runs if s.attributes) == [1, 2]
    assert {s.context.trace_id for s in runs} == {send.context.trace_id}
    assert all(s.status.status_code is StatusCode.ERROR for s in runs)
    assert all(e.name == "exception" for s in runs for e in s.events)
