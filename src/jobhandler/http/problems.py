"""RFC 9457 problem JSON: the one shape of every error the API answers."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An RFC 9457 problem; the message is also under ``error``, as the Go service had it."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def problem_response(status: int, message: str, **extra: Any) -> JSONResponse:
    titles = {
        400: "Bad Request",
        404: "Not Found",
        409: "Conflict",
        413: "Content Too Large",
        422: "Unprocessable Content",
        503: "Service Unavailable",
    }
    body = {
        "type": "about:blank",
        "title": titles.get(status, "Error"),
        "status": status,
        "detail": message,
        "error": message,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)
