"""The job and workflow pages' change streams: server-sent events telling a page's script when
to refresh.

The stream carries only that the job changed (its new status); the script then fetches the
page's live part, so what is shown is always rendered by the same template and checked for the
same session. The events come from the App's one live feed (``App.live``), so a page costs no
read of its own while nothing happens. The stream asks the session's token again as it goes
(every ``live.RECHECK_SECONDS``) and ends once the token is revoked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobhandler.http.dashboard.web import dashboard
from jobhandler.http.token_cache import Grant
from jobhandler.model.errors import JobNotFound
from jobhandler.model.validation import is_job_id
from jobhandler.service.workflows import WorkflowNotFound

if TYPE_CHECKING:
    from jobhandler.service import Service
    from jobhandler.service.live import Match

KEEP_ALIVE = 15.0  # seconds between comments on an idle stream, so proxies keep it open
RETRY_MS = 2000  # how soon the browser reconnects a stream that broke off


async def job_events(request: Request) -> Response:
    dash = dashboard(request)
    job_id = request.path_params["job_id"]
    viewer = await dash.sessions.viewer(request, "GET", f"/jobs/{job_id}")
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    await dash.service.jobs.get(job_id)  # an unknown job is a 404, not a stream that never speaks
    grant = dash.sessions.grant(viewer, "GET", f"/jobs/{job_id}")
    changes = _changes(dash.service, lambda job: job.id == job_id, grant)
    return StreamingResponse(changes, media_type="text/event-stream")


async def workflow_events(request: Request) -> Response:
    """Any change to a job of the workflow: a burst of them (a fan-out finishing) is sent as
    one event, and the page's script fetches once for a burst however long."""
    dash = dashboard(request)
    workflow_id = request.path_params["workflow_id"]
    viewer = await dash.sessions.viewer(request, "GET", f"/workflows/{workflow_id}")
    if not is_job_id(workflow_id):
        raise WorkflowNotFound(workflow_id)
    await dash.service.workflows.get(workflow_id)
    grant = dash.sessions.grant(viewer, "GET", f"/workflows/{workflow_id}")
    changes = _changes(dash.service, lambda job: job.workflow_id == workflow_id, grant)
    return StreamingResponse(changes, media_type="text/event-stream")


async def _changes(service: Service, match: Match, grant: Grant) -> AsyncIterator[str]:
    async with service.live.subscribe(match, still_allowed=grant.holds) as changes:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            try:
                job = await asyncio.wait_for(changes.next(), KEEP_ALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            while job is not None and not changes.queue.empty():
                job = changes.queue.get_nowait()  # the latest of those waiting stands for all
            if job is None:
                return  # dropped by the feed (too slow: the browser reconnects) or revoked
            yield f"event: job\ndata: {job.status.value}\n\n"
