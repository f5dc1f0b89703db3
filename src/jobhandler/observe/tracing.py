"""OpenTelemetry spans for submits and runs, when ``opentelemetry`` is installed (the ``otel``
extra) and the application set a tracer provider; otherwise nothing at all.

A submit is a ``send {queue}`` span (PRODUCER) around the write, child of whatever span is
current (an instrumented web request, say). Its W3C ``traceparent`` is stored with each job it
wrote (``Job.trace_context``), so the worker's ``process {queue}`` span (CONSUMER) around each
run is its child, on whichever machine the job runs: one trace follows a request into its
background work, retries included. Attributes follow the messaging semantic conventions
(still "development" upstream).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from jobhandler.model.jobs import Job, NewJob
from jobhandler.observe.events import Events

try:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the extra is not installed: no spans, no cost
    trace = None  # type: ignore[assignment]

TRACER = "jobhandler"
SYSTEM = "jobhandler"
TRACEPARENT = "traceparent"


def trace_job_events(events: Events) -> None:
    """Make spans for the submits and runs of ``events``' App (if OpenTelemetry is installed)."""
    if trace is None:
        return
    events.around_submit(_submit_span)
    events.around_run(_run_span)


class _Provider:
    """Whether the application set a tracer provider (until then every span would be a no-op).

    Looked up at most once a second: the lookup reads the environment, and a run asks.
    """

    enabled = False
    next_look = float("-inf")

    @classmethod
    def set(cls) -> bool:
        now = time.monotonic()
        if now >= cls.next_look:
            provider = trace.get_tracer_provider() if trace is not None else None
            cls.enabled = provider is not None and not isinstance(
                provider, trace.ProxyTracerProvider
            )
            cls.next_look = now + 1.0
        return cls.enabled


_enabled = _Provider.set


def provider_changed() -> None:
    """Look for the tracer provider again on the next span (else within a second)."""
    _Provider.next_look = float("-inf")


_NOTHING = contextlib.nullcontext()


def _submit_span(new: list[NewJob]) -> AbstractContextManager[list[NewJob]]:
    if not _enabled() or not new:
        return contextlib.nullcontext(new)
    return _submit_spanned(new)


@contextlib.contextmanager
def _submit_spanned(new: list[NewJob]) -> Iterator[list[NewJob]]:
    queues = sorted({job.queue for job in new})
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": ",".join(queues),
        "messaging.batch.message_count": len(new),
    }
    if len(new) == 1:
        attributes["messaging.message.id"] = new[0].id
        attributes["jobhandler.task"] = new[0].task
    tracer = trace.get_tracer(TRACER)
    name = f"send {queues[0]}" if len(queues) == 1 else "send"
    with tracer.start_as_current_span(name, kind=trace.SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        parent = carrier.get(TRACEPARENT)
        yield [dataclasses.replace(job, trace_context=parent) for job in new] if parent else new


def _run_span(job: Job) -> AbstractContextManager[object]:
    return _run_spanned(job) if _enabled() else _NOTHING


@contextlib.contextmanager
def _run_spanned(job: Job) -> Iterator[object]:
    parent = None
    if job.trace_context:
        parent = TraceContextTextMapPropagator().extract({TRACEPARENT: job.trace_context})
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": job.id,
        "jobhandler.task": job.task,
        "jobhandler.attempt": job.attempt,
    }
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        f"process {job.queue}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
