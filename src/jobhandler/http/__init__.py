"""The HTTP API: ``create_app(app)`` builds the FastAPI application."""

from jobhandler.http.api import create_app

__all__ = ["create_app"]
