"""The dashboard: server-rendered pages over the App, an ASGI app to mount at any path.

``jobhandler serve`` mounts it at ``/ui`` (and ``/`` leads there); any ASGI application can
mount it elsewhere, every link follows the mount point::

    api.mount("/admin/jobs", create_dashboard(app))

It signs users in with the API's tokens and checks each page and action against the scope
the equivalent API route needs (see session.py); it reads and writes only through the App.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from jobhandler.http.auth import server_tokens
from jobhandler.http.dashboard import actions, live, operate, pages, workflow_pages
from jobhandler.http.dashboard.web import ERRORS, Dashboard, SecurityHeaders
from jobhandler.http.token_cache import TokenCache
from jobhandler.settings import Settings

if TYPE_CHECKING:
    from jobhandler.app import App

PREFIX = "/ui"  # where ``serve`` mounts it
STATIC = Path(__file__).parent / "static"

ROUTES = [
    Route("/", pages.overview, name="overview"),
    Route("/jobs", pages.jobs, name="jobs"),
    Route("/jobs/{job_id}", pages.job, name="job"),
    Route("/jobs/{job_id}/events", live.job_events, name="job_events"),
    Route(
        "/jobs/{job_id}/{action:str}",
        actions.job_action,
        methods=["POST"],
        name="job_action",
    ),
    Route("/workflows", workflow_pages.workflows, name="workflows"),
    Route("/workflows/{workflow_id}", workflow_pages.workflow, name="workflow"),
    Route("/workflows/{workflow_id}/events", live.workflow_events, name="workflow_events"),
    Route(
        "/workflows/{workflow_id}/cancel",
        actions.workflow_cancel,
        methods=["POST"],
        name="workflow_cancel",
    ),
    Route("/queues", pages.queues, name="queues"),
    Route("/workers", pages.workers, name="workers"),
    Route("/tasks", pages.tasks, name="tasks"),
    Route("/tasks/{name}", pages.task, name="task"),
    Route("/tasks/{name}", actions.submit, methods=["POST"], name="submit"),
    Route("/schedules", pages.schedules, name="schedules"),
    Route("/bulk/{action:str}", operate.bulk_confirm, name="bulk_confirm"),
    Route("/bulk/{action:str}", operate.bulk_run, methods=["POST"], name="bulk_run"),
    Route("/queues/{name}/limits", operate.queue_limits, methods=["POST"], name="queue_limits"),
    Route("/{kind:str}/{name}/{action:str}", actions.steer, methods=["POST"], name="steer"),
    Route("/login", actions.login_form, name="login"),
    Route("/login", actions.login, methods=["POST"], name="login_submit"),
    Route("/logout", actions.logout, methods=["POST"], name="logout"),
    Mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static"),
]


def create_dashboard(
    app: App, settings: Settings | None = None, tokens: TokenCache | None = None
) -> Starlette:
    """The dashboard of ``app`` as an ASGI application (``settings``: the app's own;
    ``tokens``: the cache of the server it is part of, so it opens and closes with the API)."""
    web = Starlette(
        routes=ROUTES,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers=ERRORS,
    )
    # A dashboard mounted in another application gets a token cache of its own.
    tokens = tokens or server_tokens(lambda: app.service)
    web.state.dashboard = Dashboard(lambda: app.service, settings, tokens)
    return web


__all__ = ["PREFIX", "create_dashboard"]
