"""What the OpenAPI description says beyond the routes: response models, errors, links.

The handlers build their JSON by hand (the hot path); these models only describe it, so the
description, its clients and schemathesis know every body and every status the API can answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from jobhandler.app import App, SubmitRequest
from jobhandler.http.problems import PROBLEM
from jobhandler.http.schemas import JobOut
from jobhandler.validation import RUN_AT_END, RUN_AT_MIN, RUN_AT_RANGE

if TYPE_CHECKING:
    from jobhandler.tasks import Task


class ProblemOut(BaseModel):
    """RFC 9457 problem JSON; the message is under ``error`` too, as the Go service had it."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    error: str
    errors: list[dict[str, Any]] | None = None  # 422: one entry per bad field (loc, msg, type)
    job_status: str | None = None  # 409: the status that forbids the action


class BatchOut(BaseModel):
    jobs: list[JobOut]


class QueueOut(BaseModel):
    queue: str
    counts: dict[str, int]


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    running: int
    started_at: str
    last_seen_at: str


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]


_MEANINGS = {
    400: "the body is not JSON (or lacks a required member), a bad cursor, or a Host not allowed",
    401: "no token, or an unknown one, while the store holds tokens",
    403: "the token's scope does not allow this",
    404: "no such job",
    409: "the job's status does not allow this",
    413: "the body is over the size limit",
    415: "a body that is not application/json",
    422: "a value is refused; errors name each field",
    500: "an unexpected error (logged by the server; no details are shown)",
    503: "the store cannot be reached",
}
_PROBLEM_SCHEMA = ProblemOut.model_json_schema()


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries of these error statuses, each a problem JSON body."""
    return {
        status: {
            "description": _MEANINGS[status],
            "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


# Every route may refuse a Host, fail unexpectedly, or (once tokens exist) want a token.
EVERY = (400, 401, 403, 500)
STORE = (*EVERY, 503)


def job_links() -> dict[str, Any]:
    """From a created job to what can be done with it (schemathesis follows these)."""
    by_id = {"job_id": "$response.body#/id"}
    return {
        name: {"operationId": operation, "parameters": by_id}
        for name, operation in (
            ("GetJob", "getJob"),
            ("CancelJob", "cancelJob"),
            ("RetryJob", "retryJob"),
            ("DeleteJob", "deleteJob"),
        )
    }


# A body may not give both: "give either delay or run_at, not both".
_NOT_BOTH_TIMES = {
    "not": {
        "required": ["delay", "run_at"],
        "properties": {"delay": {"type": "number"}, "run_at": {"not": {"type": "null"}}},
    }
}
_NO_NUL = "^[^\\u0000]*$"  # every string of a payload: PostgreSQL cannot store NUL


def submit_schema(app: App) -> dict[str, Any]:
    """The body of one submit: one variant per task, each with that task's payload schema.

    So the description promises exactly what the server takes: a payload of the named task's
    type, a ``run_at`` in range, and never ``delay`` with ``run_at``.
    """
    properties = dict(SubmitRequest.model_json_schema()["properties"])
    properties["run_at"] = _run_at_schema()
    common = {k: v for k, v in properties.items() if k not in ("payload", "task")}
    variants = [
        _variant(common, {"const": task.name}, task, ["payload", "task"]) for task in app.tasks
    ]
    if app.default_task is not None and app.default_task in app.tasks:
        default = app.tasks.get(app.default_task)
        variants.append(_variant(common, {"type": "null"}, default, ["payload"]))
    return {"oneOf": variants} if variants else {"type": "object"}


def _variant(
    common: dict[str, Any], task_schema: dict[str, Any], task: Task[Any, Any], required: list[str]
) -> dict[str, Any]:
    payload = {**payload_schema(task), "description": f"the input of task {task.name!r}"}
    return {
        "type": "object",
        "title": f"a job of {task.name}",
        "properties": {**common, "task": task_schema, "payload": payload},
        "required": required,
        "additionalProperties": False,
        **_NOT_BOTH_TIMES,
    }


def _run_at_schema() -> dict[str, Any]:
    years = "(19[7-9][0-9]|20[0-9][0-9])"  # RUN_AT_FIRST_YEAR to RUN_AT_LAST_YEAR
    return {
        "anyOf": [
            {"type": "string", "format": "date-time", "pattern": f"^{years}-"},
            {"type": "number", "minimum": RUN_AT_MIN, "exclusiveMaximum": RUN_AT_END},
            {"type": "null"},
        ],
        "default": None,
        "description": f"when due: RFC 3339 or epoch seconds, {RUN_AT_RANGE}",
    }


def payload_schema(task: Task[Any, Any]) -> dict[str, Any]:
    """A task's payload schema, self-contained (its ``$defs`` inlined), strings without NUL."""
    schema = task.payload_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}), ())
    return inlined


def _inline(node: Any, defs: dict[str, Any], expanding: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in expanding or name not in defs:
            return {}  # a recursive type: described as any JSON (the server still checks it)
        siblings = {k: v for k, v in node.items() if k != "$ref"}  # a description, say
        return {**_inline(defs[name], defs, (*expanding, name)), **siblings}
    out = {k: _inline(v, defs, expanding) for k, v in node.items() if k != "$defs"}
    if out.get("type") == "string" and not {"pattern", "format", "enum", "const"} & out.keys():
        out["pattern"] = _NO_NUL
    kept = out.get("additionalProperties", False) is not False  # extra keys stored, not dropped
    if out.get("type") == "object" and kept and "propertyNames" not in out:
        out["propertyNames"] = {"pattern": _NO_NUL}
    return out


def batch_schema(app: App, max_jobs: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["jobs"],
        "properties": {
            "jobs": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_jobs,
                "items": submit_schema(app),
            }
        },
    }
