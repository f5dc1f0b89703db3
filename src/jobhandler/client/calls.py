"""The HTTP API's calls, each described once (``Calls``), and how an answer becomes a model.

Each ``Calls`` method takes the parameters of the client method of its name, so both clients
(clients.py) are made from it: a client method sends its ``Call`` and reads the answer with a
reader below, into the wire models the server writes (wire.py): a job is declared once, on both
sides of the wire. Those models hold
times as epoch seconds, as ``Job`` does, and write them as RFC 3339; the readers below turn the
RFC 3339 text of an answer back into epoch seconds, so ``model.model_dump_json()`` on the client
gives the server's own JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from typing_extensions import Unpack

if TYPE_CHECKING:
    from pydantic import BaseModel

    from jobhandler.client.wire import (
        AttemptOut,
        BatchOut,
        BulkOut,
        JobOut,
        QueueOut,
        ScheduleOut,
        TaskOut,
        WorkerOut,
        WorkflowOut,
        WorkflowSummaryOut,
    )
    from jobhandler.model.options import EnqueueOptions

BulkAction = Literal["cancel", "retry", "delete"]


class QueueLimits(TypedDict, total=False):
    """``PATCH /queues/{name}``: a limit left out stays as it is; None removes it."""

    concurrency: int | None
    rate_limit: str | None  # "100/s", "10/min"
    key_concurrency: int | None  # per concurrency_key
    key_rate_limit: str | None


@dataclass(frozen=True, slots=True)
class Call:
    """One API call, described once and sent by either client."""

    method: str
    path: str
    params: list[tuple[str, Any]] = field(default_factory=list)
    body: Any = None
    timeout: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None  # the job it is about: its 404 is then a JobNotFound
    # A workflow's calls leave ``job_id`` None: their 404 is a plain NotFound.


def _submit_body(task: str | None, payload: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"payload": payload}
    if task is not None:
        body["task"] = task
    body.update({k: v.isoformat() if isinstance(v, datetime) else v for k, v in options.items()})
    return {k: v for k, v in body.items() if v is not None or k == "payload"}


def _workflow_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """A workflow job's body: times as RFC 3339, the payload always sent (null included)."""
    body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in job.items()}
    return {"payload": None, **body}


class Calls:
    """The API's calls, each with the parameters of the client method of its name (``list``
    is ``list_jobs``'s first page). ``client.send(Calls.get(job_id))`` gives the raw JSON."""

    @staticmethod
    def submit(
        task: str | None,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> Call:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Call("POST", "/jobs", body=_submit_body(task, payload, options), headers=headers)

    @staticmethod
    def submit_many(jobs: Sequence[dict[str, Any]]) -> Call:
        """Up to 1,000 jobs, all or none: each a dict of ``task``, ``payload`` and options."""
        return Call("POST", "/jobs/batch", body={"jobs": list(jobs)})

    @staticmethod
    def get(job_id: str, *, wait: float = 0) -> Call:
        """The job; with ``wait``, held until it is terminal (at most 60 s)."""
        params = [("wait", wait)] if wait else []
        timeout = wait + 10 if wait else None
        return Call("GET", f"/jobs/{job_id}", params, timeout=timeout, job_id=job_id)

    @staticmethod
    def list(
        statuses: Sequence[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Call:
        params: list[tuple[str, Any]] = [("status", s) for s in statuses or []]
        params += [(k, v) for k, v in (("queue", queue), ("task", task), ("cursor", cursor)) if v]
        params.append(("limit", limit))
        return Call("GET", "/jobs", params)

    @staticmethod
    def cancel(job_id: str) -> Call:
        return Call("POST", f"/jobs/{job_id}/cancel", timeout=30, job_id=job_id)

    @staticmethod
    def retry(job_id: str) -> Call:
        return Call("POST", f"/jobs/{job_id}/retry", job_id=job_id)

    @staticmethod
    def delete(job_id: str) -> Call:
        return Call("DELETE", f"/jobs/{job_id}", job_id=job_id)

    @staticmethod
    def attempts(job_id: str) -> Call:
        return Call("GET", f"/jobs/{job_id}/attempts", job_id=job_id)

    @staticmethod
    def bulk(
        action: BulkAction,
        *,
        status: Sequence[str] = (),
        queue: str | None = None,
        task: str | None = None,
        created_before: datetime | float | None = None,
    ) -> Call:
        if isinstance(created_before, int | float):
            created_before = datetime.fromtimestamp(created_before, UTC)
        when = created_before.isoformat() if created_before else None
        given = {"status": list(status), "queue": queue, "task": task, "created_before": when}
        body = {k: v for k, v in given.items() if v}
        return Call("POST", f"/jobs/bulk/{action}", body=body, timeout=120)

    @staticmethod
    def submit_workflow(name: str, jobs: Sequence[Mapping[str, Any]]) -> Call:
        """A workflow, all or none: each job a dict of ``key``, ``task``, ``payload``,
        ``after`` (keys of jobs it runs after), ``on_parent_failure`` and the usual options."""
        body = {"name": name, "jobs": [_workflow_job(job) for job in jobs]}
        return Call("POST", "/workflows", body=body)

    @staticmethod
    def get_workflow(workflow_id: str) -> Call:
        return Call("GET", f"/workflows/{workflow_id}")

    @staticmethod
    def list_workflows(
        status: Sequence[str] = (),
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Call:
        """One page of workflows, newest first, each with its jobs' counts (not its jobs)."""
        params: list[tuple[str, Any]] = [("status", s) for s in status]
        params += [(k, v) for k, v in (("name", name), ("cursor", cursor)) if v]
        params.append(("limit", limit))
        return Call("GET", "/workflows", params)

    @staticmethod
    def cancel_workflow(workflow_id: str) -> Call:
        """Cancel what has not finished (a running job: its worker is asked to stop it)."""
        return Call("POST", f"/workflows/{workflow_id}/cancel", timeout=120)

    @staticmethod
    def tasks() -> Call:
        return Call("GET", "/tasks")

    @staticmethod
    def queues() -> Call:
        return Call("GET", "/queues")

    @staticmethod
    def update_queue(name: str, **limits: Unpack[QueueLimits]) -> Call:
        return Call("PATCH", f"/queues/{name}", body=dict(limits))

    @staticmethod
    def pause_queue(name: str) -> Call:
        return Call("POST", f"/queues/{name}/pause")

    @staticmethod
    def resume_queue(name: str) -> Call:
        return Call("POST", f"/queues/{name}/resume")

    @staticmethod
    def schedules() -> Call:
        return Call("GET", "/schedules")

    @staticmethod
    def pause_schedule(name: str) -> Call:
        return Call("POST", f"/schedules/{name}/pause")

    @staticmethod
    def resume_schedule(name: str) -> Call:
        return Call("POST", f"/schedules/{name}/resume")

    @staticmethod
    def workers() -> Call:
        return Call("GET", "/workers")

    @staticmethod
    def ready() -> Call:
        return Call("GET", "/readyz")


# -- answers as models ---------------------------------------------------------------------
# The wire models are imported on first use, and pydantic with them: a CLI command that prints
# the raw JSON, or a script that only sends calls, does not pay for them.


def nothing(body: Any) -> None:
    """The answer of a call that answers nothing worth reading (``delete``: 204)."""


def job(body: Any) -> JobOut:
    out: JobOut = _read("JobOut", body)
    return out


def jobs(body: Any) -> list[JobOut]:
    return [job(item) for item in body]


def batch(body: Any) -> BatchOut:
    out: BatchOut = _read("BatchOut", {**body, "jobs": jobs(body["jobs"])})
    return out


def bulk(body: Any) -> BulkOut:
    out: BulkOut = _read("BulkOut", body)
    return out


def workflow(body: Any) -> WorkflowOut:
    out: WorkflowOut = _read("WorkflowOut", body)
    return out


def workflows(body: Any) -> list[WorkflowSummaryOut]:
    return [_read("WorkflowSummaryOut", item) for item in body]


def attempts(body: Any) -> list[AttemptOut]:
    return [_read("AttemptOut", item) for item in body]


def tasks(body: Any) -> list[TaskOut]:
    return [_read("TaskOut", item) for item in body]


def queue(body: Any) -> QueueOut:
    out: QueueOut = _read("QueueOut", body)
    return out


def queues(body: Any) -> list[QueueOut]:
    return [queue(item) for item in body]


def schedule(body: Any) -> ScheduleOut:
    out: ScheduleOut = _read("ScheduleOut", body)
    return out


def schedules(body: Any) -> list[ScheduleOut]:
    return [schedule(item) for item in body]


def workers(body: Any) -> list[WorkerOut]:
    return [_read("WorkerOut", item) for item in body]


def _read(name: str, body: Any) -> Any:
    """``body`` as the wire model ``name``, its RFC 3339 times back in epoch seconds."""
    from jobhandler.client import wire as schemas

    model: type[BaseModel] = getattr(schemas, name)
    if isinstance(body, dict):
        names = _time_fields(model)
        body = {k: _epoch(v) if k in names and isinstance(v, str) else v for k, v in body.items()}
    return model.model_validate(body)


def _epoch(text: str) -> float | str:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return text  # the model's own validation says what is wrong with it


@cache
def _time_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields a model writes as RFC 3339: their JSON Schema says so (``date-time``)."""
    properties = model.model_json_schema(mode="serialization").get("properties", {})
    return frozenset(name for name, schema in properties.items() if _is_time(schema))


def _is_time(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "date-time" or any(_is_time(s) for s in schema.get("anyOf", []))
