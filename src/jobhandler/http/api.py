"""The HTTP API. ``create_app(app)`` composes the routers around one App; no module state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from jobhandler.app import App
from jobhandler.http.auth import install_access_control, server_tokens
from jobhandler.http.dashboard import PREFIX as DASHBOARD
from jobhandler.http.dashboard import create_dashboard
from jobhandler.http.docs import install_docs
from jobhandler.http.inputs import forbid_unknown_query
from jobhandler.http.openapi import describe_bodies
from jobhandler.http.problems import install_error_handlers
from jobhandler.http.routes import ROUTERS
from jobhandler.observe import metrics
from jobhandler.service import Service
from jobhandler.settings import Settings


def create_app(app: App, settings: Settings | None = None) -> FastAPI:
    """The FastAPI application for ``app``. If ``app`` is not connected when the server
    starts, it connects with ``settings`` for the server's lifetime."""
    settings = settings or app.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            app.service  # noqa: B018 - connected already (the CLI does it)?
        except RuntimeError:
            async with app.connected(settings):
                yield
        else:
            yield

    api = FastAPI(
        title="Job Handler",
        summary="Submit, watch and steer background jobs.",
        version=metadata.version("jobhandler"),  # as `jobhandler --version` tells it
        lifespan=lifespan,
        docs_url=None,  # served from the package, under the dashboard's CSP (http/docs.py)
        redoc_url=None,
    )
    service: Callable[[], Service] = lambda: app.service  # noqa: E731 - once connected
    api.state.service = service  # what the routes are handed (see http.inputs.served)
    api.state.settings = settings
    for router in ROUTERS:
        # The routes themselves: an ``include_router`` is resolved again on every request
        # (some 300 more Python calls each), and these routers need no prefix or options.
        api.router.routes.extend(router.routes)
    forbid_unknown_query(api)  # every route: an undeclared query parameter is a 422
    tokens = server_tokens(service, settings)  # the API's and the dashboard's: they close together
    api.mount(DASHBOARD, create_dashboard(app, settings, tokens))
    api.add_route("/", _to_dashboard, include_in_schema=False)
    install_docs(api)
    metrics.install(app.events)  # count this process's job events from now on (GET /metrics)
    describe_bodies(api, app.tasks, app.default_task)
    install_error_handlers(api)
    install_access_control(api, tokens, settings, own_auth=(DASHBOARD,))
    return api


async def _to_dashboard(_: Request) -> Response:
    # Relative, so it also leads the right way behind a proxy that serves us under a path.
    return RedirectResponse(DASHBOARD.removeprefix("/") + "/", status_code=307)
