"""What a request carries, checked at the edge before anything else sees it.

Bodies are read and parsed here rather than by FastAPI: a body over the limit is refused while
it streams in (413), a body that is not standard JSON (``NaN`` included) is a 400, one nested
too deep a 422, and a submit without a payload a 400, each with a message that says so.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, cast
from urllib.parse import parse_qsl, urlencode

import pydantic
from fastapi import Depends, FastAPI, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from starlette.types import ASGIApp, Receive, Scope, Send

from jobhandler.http.openapi import problems
from jobhandler.http.problems import Problem
from jobhandler.model.errors import InvalidJob, JobNotFound
from jobhandler.model.jobs import JobStatus, NewJob
from jobhandler.model.options import SubmitRequest
from jobhandler.model.records import CURSOR_PATTERN, JobFilter
from jobhandler.model.validation import (
    FILTER_MAX_LENGTH,
    UNIQUE_KEY_MAX_LENGTH,
    field_errors,
    filter_error,
    is_job_id,
    run_at_problem,
)
from jobhandler.service import Service
from jobhandler.service.submits import IdempotencyKey, fingerprint, owner_of
from jobhandler.settings import Settings


# The service and Settings are read from the application's state (``create_app`` puts them
# there) by a plain call, not ``Depends``: each dependency costs some 80 Python calls a request.
def served(request: Request) -> Service:
    """The service of the App this server serves (made when the App connected)."""
    return cast(Service, request.app.state.service())


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
        # As ``json.loads`` reads bytes, with one decoder made at import, not one per request.
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError:  # the parser's own limit, far past any payload we would take
        message = f"request body nests deeper than {max_depth} levels"
        raise Problem(
            422, message, errors=[{"loc": [], "msg": message, "type": "json_too_deep"}]
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"request body is not valid JSON: {_first_line(exc)}") from None


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def first_header(request: Request, name: bytes) -> str | None:
    """A header's first value, as Starlette's ``request.headers.get`` finds it (``name`` in
    lower case, as ASGI servers pass names), without building the headers' mapping or the
    KeyError its ``get`` costs when the header is absent: the submits' hot path asks."""
    for key, value in request.scope["headers"]:
        if key == name:
            return cast(bytes, value).decode("latin-1")
    return None


async def read_json(request: Request, settings: Settings) -> Any:
    """The body as JSON, refused (413) as soon as it is known to be over the limit."""
    limit = settings.max_body_bytes
    declared = first_header(request, b"content-length")
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
        errors = field_errors(exc.errors(), lambda loc: [*where, *loc])
        raise _unprocessable(errors) from None


def submit_requests(service: Service, body: Any) -> list[NewJob]:
    """A batch's jobs, each checked and made once (one id, one payload walk), with one clock
    reading for all; every bad job named in one 422 (nothing is stored)."""
    if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
        raise Problem(400, "request body must be a JSON object with a jobs array")
    if unknown := sorted(set(body) - BATCH_MEMBERS):  # as every other body: no member ignored
        raise _unprocessable(
            [{"loc": [name], "msg": _EXTRA, "type": "extra_forbidden"} for name in unknown]
        )
    new: list[NewJob] = []
    errors: list[dict[str, Any]] = []
    now = service.clock()
    for index, request in enumerate(_batch_requests(body["jobs"])):
        if isinstance(request, list):  # the item's own errors
            errors.extend(request)
            continue
        try:  # name every bad job in one answer, not only those of the first kind
            new.append(service.submits.new_job(request, now))
        except InvalidJob as exc:
            errors.extend(exc.at("jobs", index))
    if errors:
        raise Problem(422, f"{len(errors)} errors in the batch; nothing was stored", errors=errors)
    return new


_REQUESTS = pydantic.TypeAdapter(list[SubmitRequest])
# The members of a batch's body (``openapi.batch_schema`` describes the same, and no other).
BATCH_MEMBERS = frozenset({"jobs"})
_EXTRA = "Extra inputs are not permitted"  # pydantic's words, as POST /jobs answers them


def _batch_requests(items: list[Any]) -> list[SubmitRequest] | list[SubmitRequest | list[Any]]:
    """Each item read as ``submit_request`` reads it, or the errors that refuse it.

    A batch of good items is read in one pass of pydantic's core, a third cheaper than one
    call per item; any bad one and they are read one by one, for each one's own errors.
    """
    if all(isinstance(item, dict) and "payload" in item for item in items):
        try:
            return _REQUESTS.validate_python(items)
        except pydantic.ValidationError:
            pass
    requests: list[SubmitRequest | list[Any]] = []
    for index, item in enumerate(items):
        try:
            requests.append(submit_request(item, ["jobs", index]))
        except Problem as exc:
            requests.append(
                exc.extra.get("errors")
                or [{"loc": ["jobs", index], "msg": str(exc), "type": "invalid"}]
            )
    return requests


def pydantic_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as a problem's ``errors``: loc, msg and type of each."""
    return field_errors(exc.errors())


def next_link(request: Request, cursor: str | None) -> dict[str, str]:
    """The ``Link`` header of a page with more after it: this request, at ``cursor``."""
    if not cursor:
        return {}
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    query.append(("cursor", cursor))
    return {"Link": f'<{request.url.path}?{urlencode(query)}>; rel="next"'}


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


# -- query parameters: only those a route declares ---------------------------------------------


def forbid_unknown_query(api: FastAPI) -> None:
    """Every route answers 422 to a query parameter it does not declare.

    One mechanism for all routes, installed once the routes are composed: each route's ASGI
    app is wrapped with a check of the query string's names against the route's declared
    query parameters (its dependencies' too). ``GET /jobs?payload=x`` would otherwise list
    every job, as though the filter had matched. Routes are shared by every application
    built, so a route is wrapped once.
    """
    for route in api.router.routes:
        if not isinstance(route, APIRoute) or getattr(route, "_strict_query", False):
            continue
        allowed = frozenset(field.alias for field in _query_params(route.dependant))
        route.app = _strict_query(route.app, allowed)
        route._strict_query = True  # type: ignore[attr-defined]
        route.responses.setdefault(422, problems(422)[422])  # it can answer 422 now


def _query_params(dependant: Dependant) -> list[Any]:
    found = list(dependant.query_params)
    for sub in dependant.dependencies:
        found += _query_params(sub)
    return found


def _strict_query(app: ASGIApp, allowed: frozenset[str]) -> ASGIApp:
    async def strict(scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"")
        if query:  # parsed as Starlette parses it
            names = {name for name, _ in parse_qsl(query.decode("latin-1"), True)}
            if unknown := sorted(names - allowed):
                errors = [
                    {"loc": ["query", name], "msg": "unknown query parameter", "type": "extra"}
                    for name in unknown
                ]
                raise _unprocessable(errors)  # answered by the problem handler
        await app(scope, receive, send)

    return strict


# -- idempotent submits and bulk actions -------------------------------------------------------

IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY = IDEMPOTENCY_KEY.lower().encode("latin-1")  # as ASGI servers pass header names


def idempotency_header(request: Request) -> str | None:
    """The Idempotency-Key header as sent (its first value), or None; 422 over 255 characters,
    the answer a declared header parameter got.

    Read here rather than declared on the route: FastAPI's parameter machinery costs a POST
    /jobs about a tenth of its CPU. Nor is it described as a parameter: a fuzzer that sends
    one key with many bodies would take the 422 such a reuse gets for a refused valid request
    (the operations' text describes it).
    """
    header = first_header(request, _KEY)
    if header is not None and len(header) > UNIQUE_KEY_MAX_LENGTH:
        message = f"String should have at most {UNIQUE_KEY_MAX_LENGTH} characters"
        error = {"loc": ["header", IDEMPOTENCY_KEY], "msg": message, "type": "string_too_long"}
        raise _unprocessable([error])
    return header


def idempotency_key(request: Request, header: str | None, body: Any) -> IdempotencyKey | None:
    """The request's Idempotency-Key (plain, or a quoted structured-field string), scoped to
    its token; 400 when it is empty or not printable."""
    if header is None:
        return None
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or not key.isprintable():
        raise Problem(400, "Idempotency-Key must be 1 to 255 printable characters")
    owner = owner_of(request.headers.get("authorization"))
    return IdempotencyKey(owner, key, fingerprint(body))


# What ``moment`` takes, as the API's description shows it (the years of ``run_at``).
MOMENT_SCHEMA: JsonDict = {
    "type": "string",
    "format": "date-time",
    "pattern": "^(19[7-9][0-9]|20[0-9][0-9])-",
    "description": "RFC 3339, with a time zone",
}


class BulkFilterIn(BaseModel):
    """Which jobs a bulk action applies to: ``GET /jobs``'s filters, plus ``created_before``.
    ``{}`` is every job; each action changes only the jobs its status allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: list[JobStatus] | None = None
    queue: str | None = Field(default=None, max_length=FILTER_MAX_LENGTH)
    task: str | None = Field(default=None, max_length=FILTER_MAX_LENGTH)
    created_before: str | None = Field(default=None, json_schema_extra=MOMENT_SCHEMA)


def bulk_filter(body: Any) -> JobFilter:
    """A bulk action's body as a filter: 400 unless a JSON object, 422 naming a bad member."""
    if not isinstance(body, dict):
        raise Problem(400, "request body must be a JSON object of filters ({} for every job)")
    try:
        given = BulkFilterIn.model_validate(body)
    except pydantic.ValidationError as exc:
        raise _unprocessable(pydantic_errors(exc)) from None
    check_filters(queue=given.queue, task=given.task)
    return JobFilter(
        statuses=frozenset(given.status or ()),
        queue=given.queue,
        task=given.task,
        created_before=moment(given.created_before, "created_before"),
    )


def moment(value: str | None, name: str) -> float | None:
    """A time filter (RFC 3339 text, with a zone, in the years ``run_at`` allows) as epoch
    seconds; 422 otherwise. Text only: pydantic would also take a number, which the API's
    description does not offer."""
    if value is None:
        return None
    try:
        if not _RFC3339_START.match(value):
            raise ValueError("RFC 3339 text, such as 2030-01-01T00:00:00Z")
        when = _DATETIME.validate_python(value)
        if when.tzinfo is None:
            raise ValueError("needs a time zone, for example 2030-01-01T00:00:00Z")
        if problem := run_at_problem(when):
            raise ValueError(problem)
    except (ValueError, pydantic.ValidationError) as exc:
        error = {"loc": [name], "msg": _first_line(exc), "type": "datetime"}
        raise _unprocessable([error]) from None
    return when.timestamp()


_RFC3339_START = re.compile(r"\d{4}-\d\d-\d\d[Tt]")
_DATETIME = pydantic.TypeAdapter(datetime)


# A page's cursor, as every paged list takes it.
Cursor = Annotated[
    str | None,
    Query(
        description="from the `next` link of the previous page",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]
