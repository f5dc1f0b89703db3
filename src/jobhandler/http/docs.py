"""``/docs``: the API's description in Swagger UI, served from installed files, not a CDN.

Swagger UI's script and style come from the ``fastapi-offline`` package (a copy of Swagger UI
5 and its CSS, installed with Job Handler), so the page loads nothing from another site, and
it is sent with the dashboard's own security headers (``dashboard.web.SecurityHeaders``: the
strict Content-Security-Policy, no framing, ``nosniff``). Under that policy no inline code
runs, so the page starts Swagger UI from a script file of its own (``swagger-init.js``).

ReDoc (``/redoc``) is not served: its page styles itself with inline ``<style>`` elements and
searches in a ``blob:`` worker, which that policy refuses, and it would say nothing Swagger
UI does not.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, request_response
from starlette.staticfiles import StaticFiles

from jobhandler.http.dashboard.web import SecurityHeaders

DOCS = "/docs"
# Links are relative to the page (``/docs``), so they hold behind a proxy that adds a prefix.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Job Handler API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/swagger-init.js"></script>
</body>
</html>
"""
# No validator badge (it would load an image from swagger.io), and the description of this
# server, found beside the page.
_INIT = """window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
});
"""


async def _page(_: Request) -> Response:
    return HTMLResponse(_PAGE)


async def _init(_: Request) -> Response:
    return Response(_INIT, media_type="text/javascript")


def install_docs(api: FastAPI) -> None:
    """Serve ``/docs`` (make ``api`` with ``docs_url=None, redoc_url=None``)."""
    assets = StaticFiles(packages=[("fastapi_offline", "static")], follow_symlink=False)
    api.router.routes.extend(
        [
            Route(DOCS, SecurityHeaders(request_response(_page)), methods=["GET", "HEAD"]),
            Route(
                f"{DOCS}/swagger-init.js",
                SecurityHeaders(request_response(_init)),
                methods=["GET", "HEAD"],
            ),
            Mount(f"{DOCS}/static", SecurityHeaders(assets)),
        ]
    )
