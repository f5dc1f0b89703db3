"""What a request carries, checked at the edge before anything else sees it.

Bodies are read and parsed here rather than by FastAPI: a body over the limit is refused while
it streams in (413), a body that is not standard JSON (``NaN`` included) is a 400, one nested
too deep a 422, and a submit without a payload a 400, each with a message that says so.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

import pydantic
from fastapi import Depends, Request

from jobhandler.app import App, SubmitRequest
from jobhandler.errors import InvalidJob, JobNotFound
from jobhandler.http.problems import Problem
from jobhandler.settings import Settings
from jobhandler.validation import filter_error, is_job_id


# The App and Settings are read from the application's state (``create_app`` puts them there)
# by a plain call, not ``Depends``: each dependency costs some 80 Python calls per request.
def served_app(request: Request) -> App:
    """The App this server serves."""
    return cast(App, request.app.state.jobhandler)


def served_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def job_id_param(job_id: str) -> str:
    """A job id from the path; one that cannot be a job's is not found without asking a store.

    ``async``: FastAPI would run a plain function in a worker thread, a hop per request.
    """
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    return job_id


JobId = Annotated[str, Depends(job_id_param)]


def _refuse_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``: Python's JSON reader takes them, JSON does not."""
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes, max_depth: int) -> Any:
    """A request body as JSON: 400 if it is not standard JSON, 422 if it nests too deep."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:  # the parser's own limit, far past any payload we would take
        message = f"request body nests deeper than {max_depth} levels"
        raise Problem(
            422, message, errors=[{"loc": [], "msg": message, "type": "json_too_deep"}]
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"request body is not valid JSON: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def read_json(request: Request, settings: Settings) -> Any:
    """The body as JSON, refused (413) as soon as it is known to be over the limit."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"request body is over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"request body is over {limit} bytes")
    return parse_json(bytes(body), settings.max_json_depth)


def submit_request(body: Any, where: list[str | int]) -> SubmitRequest:
    """One submit from parsed JSON: 400 without a payload, 422 naming each bad field."""
    if not isinstance(body, dict) or "payload" not in body:
        raise Problem(
            400,
            "request body must be a JSON object with a payload field",
            pointer="/" + "/".join(map(str, where)),
        )
    try:
        return SubmitRequest.model_validate(body)
    except pydantic.ValidationError as exc:
        errors = [
            {"loc": [*where, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise _unprocessable(errors) from None


def submit_requests(app: App, body: Any) -> list[SubmitRequest]:
    """A batch: every bad job named in one 422 (nothing is stored), or all of them checked."""
    if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
        raise Problem(400, "request body must be a JSON object with a jobs array")
    requests: list[SubmitRequest] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(body["jobs"]):
        try:
            requests.append(submit_request(item, ["jobs", index]))
        except Problem as exc:
            errors.extend(
                exc.extra.get("errors")
                or [{"loc": ["jobs", index], "msg": str(exc), "type": "invalid"}]
            )
            continue
        try:  # name every bad job in one answer, not only those of the first kind
            app.new_job(requests[-1], app.clock())
        except InvalidJob as exc:
            errors.extend(exc.at("jobs", index))
    if errors:
        raise Problem(422, f"{len(errors)} errors in the batch; nothing was stored", errors=errors)
    return requests


def check_filters(**filters: str | None) -> None:
    """``?queue=`` and ``?task=``: text a store can compare (no NUL, valid Unicode), or 422."""
    errors = [
        problem
        for name, value in filters.items()
        if value is not None and (problem := filter_error(value, ["query", name])) is not None
    ]
    if errors:
        raise _unprocessable(errors)


def _unprocessable(errors: list[dict[str, Any]]) -> Problem:
    first = errors[0]
    return Problem(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", errors=errors)
