"""Live events: jobs' status and progress changes as server-sent events (``event: job``, the
data the job's JSON as ``GET /jobs/{id}`` has it). One feed per process (live.py) serves every
stream; FastAPI's EventSourceResponse sends a keep-alive comment while a stream is idle.
A stream asks again, every few seconds, whether its caller may still read it (the Grant the
access checks left, http/token_cache.py), and ends once the caller's token is revoked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from jobhandler.client.wire import job_json
from jobhandler.http.inputs import JobId, check_filters, served
from jobhandler.http.openapi import STORE, problems
from jobhandler.http.routes.jobs import FilterText
from jobhandler.http.token_cache import grant_of
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.service.live import StillAllowed

router = APIRouter(tags=["events"])
RETRY_MS = 2000  # how soon a browser reconnects a stream that ended (a dropped slow reader)
STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a stream of `event: job` events, each one's data the job as JobOut",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string", "description": "server-sent events"},
                "itemSchema": {
                    "type": "object",
                    "properties": {
                        "event": {"const": "job"},
                        "id": {"type": "string"},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": "#/components/schemas/JobOut"},
                        },
                    },
                },
            }
        },
    }
}


def _event(job: Job) -> ServerSentEvent:
    return ServerSentEvent(
        raw_data=job_json(job).decode(), event="job", id=f"{job.id}@{job.updated_at}"
    )


# Checked by dependencies, before the stream starts: a bad filter or an unknown job is a 422
# or a 404 problem, not a stream that breaks off.
def _match(
    status: Annotated[list[JobStatus] | None, Query()] = None,
    queue: FilterText = None,
    task: FilterText = None,
) -> Callable[[Job], bool]:
    check_filters(queue=queue, task=task)
    statuses = frozenset(status or ())

    def match(job: Job) -> bool:
        return (
            (not statuses or job.status in statuses)
            and (queue is None or job.queue == queue)
            and (task is None or job.task == task)
        )

    return match


async def _existing(request: Request, job_id: JobId) -> Job:
    return await served(request).jobs.get(job_id)


def _still_allowed(request: Request) -> StillAllowed | None:
    grant = grant_of(request.scope)
    return None if grant is None else grant.holds


@router.get(
    "/events",
    response_class=EventSourceResponse,
    summary="Stream job changes (filters as GET /jobs)",
    operation_id="streamEvents",
    responses={**STREAM, **problems(*STORE, 422)},
)
async def stream_events(
    request: Request, match: Annotated[Callable[[Job], bool], Depends(_match)]
) -> AsyncIterator[ServerSentEvent]:
    live = served(request).live
    async with live.subscribe(match, still_allowed=_still_allowed(request)) as sub:
        yield ServerSentEvent(comment="subscribed", retry=RETRY_MS)
        while (job := await sub.next()) is not None:
            yield _event(job)


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Stream one job's changes: as it stands, then each change until it is finished",
    operation_id="streamJobEvents",
    responses={**STREAM, **problems(*STORE, 404, 422)},
)
async def stream_job_events(
    request: Request, found: Annotated[Job, Depends(_existing)]
) -> AsyncIterator[ServerSentEvent]:
    service = served(request)
    async with service.live.subscribe(
        lambda job: job.id == found.id, still_allowed=_still_allowed(request)
    ) as sub:
        # Read again once subscribed: a change since the first read is not missed.
        job: Job | None = await service.store.get_job(found.id) or found
        yield ServerSentEvent(comment="subscribed", retry=RETRY_MS)
        seen = None
        while job is not None:
            if job.updated_at != seen:
                seen = job.updated_at
                yield _event(job)
            if job.status.terminal:
                return
            job = await sub.next()
