"""What the OpenAPI description says beyond the routes' own models: errors, links, bodies.

With these, the description, its clients and schemathesis know every body and every status
the API can answer, and exactly which request bodies it takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from jobhandler.client.wire import ProblemOut
from jobhandler.http.problems import PROBLEM
from jobhandler.model.options import SubmitRequest
from jobhandler.model.tasks import TaskRegistry
from jobhandler.model.validation import RUN_AT_END, RUN_AT_MIN, RUN_AT_RANGE
from jobhandler.model.workflows import MAX_WORKFLOW_JOBS, WorkflowJobRequest, WorkflowRequest
from jobhandler.service.submits import MAX_BATCH

if TYPE_CHECKING:
    from jobhandler.model.tasks import Task


_MEANINGS = {
    400: "the body is not JSON (or lacks a required member), a bad cursor, or a Host not allowed",
    401: "no token, or an unknown one, while the store holds tokens",
    403: "the token's scope, or the concurrency key it is bound to, does not allow this",
    404: "no such job (or queue, schedule or workflow, where the path names one)",
    409: "the job's status does not allow this, or a unique key is held by another job",
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
    """From a created job to what can be done with it and its queue (schemathesis follows
    these: a made-up queue name is a 404, the queue of a job is one that exists)."""
    by_id = {"job_id": "$response.body#/id"}
    return {
        **{
            name: {"operationId": operation, "parameters": by_id}
            for name, operation in (
                ("GetJob", "getJob"),
                ("CancelJob", "cancelJob"),
                ("RetryJob", "retryJob"),
                ("DeleteJob", "deleteJob"),
            )
        },
        **queue_links(),
    }


def workflow_links() -> dict[str, Any]:
    """From a created workflow to reading and cancelling it."""
    by_id = {"workflow_id": "$response.body#/id"}
    return {
        name: {"operationId": operation, "parameters": by_id}
        for name, operation in (
            ("GetWorkflow", "getWorkflow"),
            ("CancelWorkflow", "cancelWorkflow"),
        )
    }


def queue_links() -> dict[str, Any]:
    """From an answer that names a queue (a job, a queue) to the actions on that queue."""
    by_name = {"name": "$response.body#/queue"}
    return {
        name: {"operationId": operation, "parameters": by_name}
        for name, operation in (
            ("PauseQueue", "pauseQueue"),
            ("ResumeQueue", "resumeQueue"),
            ("UpdateQueue", "updateQueue"),
        )
    }


# A body may not give both: "give either delay or run_at, not both".
_NOT_BOTH_TIMES = {
    "not": {
        "required": ["delay", "run_at"],
        "properties": {"delay": {"type": "number"}, "run_at": {"not": {"type": "null"}}},
    }
}
# "unique_for needs a unique_key": a window is a time a key is held.
_UNIQUE_FOR_NEEDS_A_KEY = {
    "if": {"required": ["unique_for"], "properties": {"unique_for": {"type": "number"}}},
    "then": {"required": ["unique_key"], "properties": {"unique_key": {"type": "string"}}},
}
_NUMBER = {"type": "number"}
# "debounce needs a unique_key, without unique_for", "debounce sets the start" (no delay or
# run_at), and "debounce_max_wait needs debounce".
_DEBOUNCE_RULES = [
    {
        "if": {"required": ["debounce"], "properties": {"debounce": _NUMBER}},
        "then": {
            "required": ["unique_key"],
            "properties": {"unique_key": {"type": "string"}},
            "not": {
                "anyOf": [
                    {"required": ["unique_for"], "properties": {"unique_for": _NUMBER}},
                    {"required": ["delay"], "properties": {"delay": _NUMBER}},
                    {"required": ["run_at"], "properties": {"run_at": {"not": {"type": "null"}}}},
                ]
            },
        },
    },
    {
        "if": {"required": ["debounce_max_wait"], "properties": {"debounce_max_wait": _NUMBER}},
        "then": {"required": ["debounce"], "properties": {"debounce": _NUMBER}},
    },
]
_NOT_IN_WORKFLOWS = ("unique_for", "debounce", "debounce_max_wait")
_NO_NUL = "^[^\\u0000]*$"  # every string of a payload: PostgreSQL cannot store NUL


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


def _checked_beyond_types(schema: dict[str, Any]) -> None:
    """What the server checks that a type cannot say: ``run_at``'s range, and not both times."""
    schema["properties"]["run_at"] = _run_at_schema()
    schema.update(_NOT_BOTH_TIMES)
    schema["allOf"] = [*schema.get("allOf", []), _UNIQUE_FOR_NEEDS_A_KEY, *_DEBOUNCE_RULES]


class _SubmitBody(SubmitRequest):
    """A submit as the description shows it; the server reads it with ``SubmitRequest``."""

    model_config = ConfigDict(json_schema_extra=_checked_beyond_types)


def submit_models(tasks: TaskRegistry, default_task: str | None) -> list[type[BaseModel]]:
    """One body model per task, its payload of that task's type (and one for the default task).

    So the description promises exactly what the server takes: a payload of the named task's
    type, a ``run_at`` in range, and never ``delay`` with ``run_at``.
    """
    models = [_submit_model(task, Literal[task.name], ...) for task in tasks]
    if default_task is not None and default_task in tasks:
        models.append(_submit_model(tasks.get(default_task), None, None))
    return models


def _submit_model(task: Task[Any, Any], task_type: Any, task_default: Any) -> type[BaseModel]:
    # The payload's schema is the task's own (what ``Task`` validates with), made
    # self-contained: as a field's type it would take this model's config (extra="forbid").
    payload = Annotated[Any, WithJsonSchema(payload_schema(task))]
    default = task_default is None
    title = f"a job of {task.name}" + (" (the default task)" if default else "")
    which = "absent: the app's default task" if default else "the task that runs the job"
    return create_model(
        "SubmitJob",
        __base__=_SubmitBody,
        __cls_kwargs__={"title": title},
        task=(task_type, Field(task_default, description=which)),
        payload=(payload, Field(description=f"the input of task {task.name!r}")),
    )


def submit_schema(tasks: TaskRegistry, default_task: str | None) -> dict[str, Any]:
    """The body of one submit: exactly one of the app's submit models."""
    variants = [model.model_json_schema() for model in submit_models(tasks, default_task)]
    return {"oneOf": variants} if variants else {"type": "object"}


def batch_schema(submit: dict[str, Any], max_jobs: int) -> dict[str, Any]:
    """The body of a batch: 1 to ``max_jobs`` submits, each with the body ``submit`` describes."""
    job = Annotated[Any, WithJsonSchema(submit)]
    jobs = Annotated[list[job], Field(min_length=1, max_length=max_jobs)]
    forbid = ConfigDict(extra="forbid")  # inputs.BATCH_MEMBERS: no other member is taken
    model = create_model("SubmitJobs", __config__=forbid, jobs=(jobs, ...))
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def workflow_schema(submit: dict[str, Any], max_jobs: int) -> dict[str, Any]:
    """The body of ``POST /workflows``: a name and 1 to ``max_jobs`` jobs, each a submit (as
    ``submit`` describes it, without ``unique_for`` or debounce) with its key, the keys it runs
    after and what a parent's failure does to it. That each key in ``after`` names a job, and
    that the graph has no cycle, no schema can say: the server answers 422 otherwise."""
    own = WorkflowJobRequest.model_json_schema()["properties"]
    graph = {name: own[name] for name in ("key", "after", "on_parent_failure")}

    def job(variant: dict[str, Any]) -> dict[str, Any]:
        properties = {k: v for k, v in variant["properties"].items() if k not in _NOT_IN_WORKFLOWS}
        rules = [_UNIQUE_FOR_NEEDS_A_KEY, *_DEBOUNCE_RULES]
        allof = [c for c in variant.get("allOf", []) if c not in rules]
        shaped = {**variant, "properties": {**properties, **graph}, "allOf": allof}
        shaped["required"] = [*variant.get("required", []), "key"]
        return shaped if allof else {k: v for k, v in shaped.items() if k != "allOf"}

    variants = submit.get("oneOf")
    jobs = {"oneOf": [job(v) for v in variants]} if variants else {"type": "object"}
    request = WorkflowRequest.model_json_schema()
    return {
        "title": "SubmitWorkflow",
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "jobs"],
        "properties": {
            "name": request["properties"]["name"],
            "jobs": {"type": "array", "items": jobs, "minItems": 1, "maxItems": max_jobs},
        },
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


def describe_bodies(api: FastAPI, tasks: TaskRegistry, default_task: str | None) -> None:
    """Add the request bodies an app takes (its tasks' payloads) to the submit operations.

    The routes read their bodies themselves (see ``inputs``), so FastAPI cannot see them; the
    routers are shared by every application, so each application's description gets them.
    """
    build = api.openapi
    submit = submit_schema(tasks, default_task)
    bodies = {
        "createJob": submit,
        "createJobs": batch_schema(submit, MAX_BATCH),
        "createWorkflow": workflow_schema(submit, MAX_WORKFLOW_JOBS),
    }

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                body = bodies.get(operation.get("operationId"))
                if body is not None:
                    content = {"application/json": {"schema": body}}
                    operation["requestBody"] = {"required": True, "content": content}
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
