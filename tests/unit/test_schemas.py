"""The job JSON is built by hand for speed; it must match the documented JobOut model."""

from __future__ import annotations

from jobhandler.http.schemas import JobOut, job_out
from jobhandler.jobs import Job, JobStatus


def test_job_json_has_exactly_the_documented_fields() -> None:
    job = Job(
        id="j",
        task="t",
        queue="q",
        payload={"a": 1},
        status=JobStatus.COMPLETED,
        priority=0,
        attempt=1,
        max_attempts=3,
        uncounted=0,
        timeout=None,
        run_at=1.0,
        created_at=1.0,
        updated_at=2.0,
        started_at=1.5,
        finished_at=2.0,
        result="ok",
    )
    wire = job_out(job)
    assert set(wire) == set(JobOut.model_fields)
    assert JobOut.model_validate(wire).model_dump(mode="json") == wire
