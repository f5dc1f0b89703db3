"""The end of a chaos run: drain the jobs, read the final state, run the history checker, and
put its summary where the test output shows it.

The summary goes into the test's report as a user property (``SUMMARY_PROPERTY``); the hook in
tests/conftest.py prints every one in pytest's terminal summary, with or without ``-s``, and
under xdist too (a worker sends the property to the controller with the report). It is also
written to ``checker-summary.txt`` in the test's folder, with the violations if any.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobhandler import JobStatus
from tests.acceptance.test_crash import Db
from tests.chaos.history import AttemptRecord, Fault, FinalJob, History, Op, Run, Summary, check
from tests.conftest import SUMMARY_PROPERTY, wait_until

RecordProperty = Callable[[str, object], None]


def read_runs(path: Path) -> list[Run]:
    """The runs the task logged (tests/apps/chaosapp.py): a start line and, if it returned, an
    end line per run."""
    starts: dict[str, dict[str, Any]] = {}
    ends: dict[str, float] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        entry = json.loads(line)
        if entry["event"] == "start":
            starts[entry["token"]] = entry
        else:
            ends[entry["token"]] = entry["at"]
    return [
        Run(s["job"], s["attempt"], s["worker"], token, s["at"], ends.get(token), s["clock"])
        for token, s in starts.items()
    ]


def final_state(db: Db, ids: list[str]) -> dict[str, FinalJob]:
    """Each job as stored, with its attempts, read through the Python API (one HTTP request
    per job would take longer than the chaos itself on a loaded machine)."""
    final: dict[str, FinalJob] = {}
    for job_id in ids:
        job = db.job(job_id)
        attempts = [
            AttemptRecord(a.attempt, a.outcome, a.error, a.after_user_retry)
            for a in db.run(db.app.service.jobs.attempts(job_id))
        ]
        final[job_id] = FinalJob(job_id, job.status, job.attempt, job.result, attempts)
    return final


def drain(db: Db, timeout: float = 40) -> None:
    """Wait until no job is left to run (the clients have stopped)."""

    def drained() -> bool:
        return not any(n for status, n in db.counts().items() if not JobStatus(status).terminal)

    wait_until(drained, timeout=timeout, interval=0.2)


def publish(record_property: RecordProperty, folder: Path, report: str, *extra: str) -> None:
    record_property(SUMMARY_PROPERTY, report)
    (folder / "checker-summary.txt").write_text("\n".join([report, *extra]) + "\n")


def conclude(
    name: str,
    began: float,
    ops: list[Op],
    runs: Path,
    faults: list[Fault],
    db: Db,
    record_property: RecordProperty,
    folder: Path,
) -> Summary:
    """Drain, check the whole history, publish the summary; fail on any violation."""
    drain(db)
    acked = [op.job_id for op in ops if op.kind == "submit" and op.ok and op.job_id]
    history = History(list(ops), read_runs(runs), list(faults), final_state(db, acked))
    summary, violations = check(history)
    report = f"{name} ({time.monotonic() - began:.0f} s): {summary}"
    publish(record_property, folder, report, *violations)
    assert not violations, "\n".join(violations[:30])
    return summary
