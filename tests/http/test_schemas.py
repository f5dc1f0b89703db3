"""The wire models write the JSON the API has always sent, and the description says so.

Moved from tests/unit/test_schemas.py, which compared the hand-built job JSON with ``JobOut``:
the model now writes the JSON itself, so the check is against the exact bytes the hand-built
version sent (the Go service's fields first, times in RFC 3339 with microseconds and ``Z``).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from jobhandler.client.wire import (
    SHOW_TRACEBACKS,
    JobOut,
    QueueOut,
    WorkerOut,
    job_json,
    jobs_json,
    queues_json,
    workers_json,
)
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.records import QueueStats, WorkerInfo

JOB = Job(
    id="j",
    task="t",
    queue="q",
    payload={"a": 1, "é": ["x", 2.5, None, True]},
    status=JobStatus.COMPLETED,
    priority=-3,
    attempt=1,
    max_attempts=3,
    uncounted=0,
    timeout=5.0,
    run_at=1.0,
    created_at=0.0,
    updated_at=1764492000.123456,
    started_at=1.5,
    finished_at=2.0,
    result="ok",
    error=None,
    traceback="Traceback (most recent call last): ...",
    worker_id="w",
    lease_expires_at=99.0,
    progress={"done": 1},
    cancel_requested=True,
)
# What the hand-built job_out and Starlette's JSONResponse sent for JOB, byte for byte.
WIRE = (
    '{"id":"j","payload":{"a":1,"é":["x",2.5,null,true]},"status":"completed","result":"ok",'
    '"error":null,"created_at":"1970-01-01T00:00:00.000000Z",'
    '"updated_at":"2025-11-30T08:40:00.123456Z","task":"t","queue":"q","priority":-3,'
    '"attempt":1,"max_attempts":3,"timeout":5.0,"run_at":"1970-01-01T00:00:01.000000Z",'
    '"started_at":"1970-01-01T00:00:01.500000Z","finished_at":"1970-01-01T00:00:02.000000Z",'
    '"traceback":"Traceback (most recent call last): ...","worker_id":"w",'
    '"progress":{"done":1},"cancel_requested":true,"unique_key":null,"unique_until":null,'
    '"workflow_id":null,"workflow_key":null,"after":null,"concurrency_key":null}'
).encode()


def conforms(wire: Any, model: type[Any]) -> None:
    """``wire`` is valid under the schema the OpenAPI description shows for ``model``."""
    schema = model.model_json_schema(mode="serialization")
    jsonschema_rs.validator_for(schema, validate_formats=True).validate(wire)


def test_job_json_is_byte_for_byte_what_the_api_sent() -> None:
    assert job_json(JOB) == WIRE
    assert jobs_json([JOB, JOB]) == b"[" + WIRE + b"," + WIRE + b"]"


def test_job_json_has_exactly_the_documented_fields_in_order() -> None:
    wire = json.loads(job_json(JOB))
    assert list(wire) == list(JobOut.model_fields)
    conforms(wire, JobOut)
    unset = Job(**{**{f: getattr(JOB, f) for f in JOB.__slots__}, "started_at": None})
    conforms(json.loads(job_json(unset)), JobOut)
    assert json.loads(job_json(unset))["started_at"] is None


@pytest.mark.parametrize("shown", [True, False])
def test_a_submit_only_token_sees_no_traceback(shown: bool) -> None:
    token = SHOW_TRACEBACKS.set(shown)
    try:
        for wire in (json.loads(job_json(JOB)), *json.loads(jobs_json([JOB]))):
            assert (wire["traceback"] is not None) is shown
    finally:
        SHOW_TRACEBACKS.reset(token)


def test_workers_and_queues_json_match_their_models() -> None:
    worker = WorkerInfo("w1", "host", 42, ["default"], 10, 1.0, 2.25, running=3)
    (wire,) = json.loads(workers_json([worker]))
    assert wire == {
        "id": "w1",
        "host": "host",
        "pid": 42,
        "queues": ["default"],
        "concurrency": 10,
        "running": 3,
        "started_at": "1970-01-01T00:00:01.000000Z",
        "last_seen_at": "1970-01-01T00:00:02.250000Z",
    }
    conforms(wire, WorkerOut)
    (queue,) = json.loads(queues_json([QueueStats("default", {"queued": 2, "failed": 1})]))
    assert queue == {
        "queue": "default",
        "counts": {s.value: 0 for s in JobStatus}
        | {
            "queued": 2,
            "failed": 1,
        },
        "oldest_waiting_at": None,
        "paused": False,
        "concurrency": None,
        "rate_limit": None,
        "served": False,
        "key_concurrency": None,
        "key_rate_limit": None,
    }
    assert list(queue["counts"]) == [s.value for s in JobStatus]
    conforms(queue, QueueOut)
