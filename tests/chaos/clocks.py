"""The clock properties of a chaos history: workers whose clocks run off the host's (under
libfaketime, tests/faketime.py) judge time on the database's clock, as every host must.

- No run starts before its job's ``run_at``: the time the API server acknowledged the job due
  at (on the database's clock), or a user's retry sent before the run, against the run's start
  on the host's clock, which the database shares (the task logs it so, tests/apps/chaosapp.py).
  A worker that judged due on its own clock 30 s ahead would start a delayed job at once.
- No lease is judged expired early: a worker 30 s behind would write leases that look expired
  to the others, one 30 s ahead would find theirs expired 30 s early. Either is a duplicate run
  that no fault explains, which history.py's check 5 objects to.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.chaos.history import Op, Run

# The store measures a host's skew in whole seconds (model/clock.py: ``skew_of``), and counts a
# host within a second of the database's clock as in sync: such a host may start a run up to a
# second before its ``run_at``. A clock that is not corrected at all is 30 s off here.
EARLY_SLACK = 1.0


@dataclass
class Clocks:
    """What the run did with time: the skewed workers, and how delayed jobs started."""

    skewed_runs: Counter[tuple[str, float]] = field(default_factory=Counter)  # (worker, offset)
    delayed: int = 0  # jobs acknowledged due later than the acknowledgement
    delayed_on_skewed: int = 0  # runs of those that skewed workers started
    earliest: float | None = None  # the least start minus ``run_at`` of any run of those

    def __str__(self) -> str:
        workers = ", ".join(
            f"{worker} {offset:+.0f} s ({n} runs)"
            for (worker, offset), n in sorted(self.skewed_runs.items())
        )
        earliest = "none" if self.earliest is None else f"{self.earliest:+.2f} s"
        return (
            f"workers with skewed clocks: {workers or 'none'}; delayed jobs: {self.delayed}"
            f" ({self.delayed_on_skewed} runs on skewed workers; the earliest start minus its"
            f" run_at: {earliest})"
        )


def _due(ops: Sequence[Op]) -> tuple[dict[str, float], set[str], dict[str, list[float]]]:
    """Each job's ``run_at`` as its submit was acknowledged (repeats of one Idempotency-Key
    answer the same job), the jobs due later than that answer, and when each retry that may
    have taken effect was sent: a user's retry makes the job due at once, before its
    ``run_at`` if it waited (a delayed job cancelled, then retried)."""
    due: dict[str, float] = {}
    delayed: set[str] = set()
    retried: dict[str, list[float]] = defaultdict(list)
    for op in ops:
        if op.kind == "submit" and op.ok and op.job_id and op.run_at is not None:
            due[op.job_id] = op.run_at
            if op.run_at > op.completed:
                delayed.add(op.job_id)
        elif op.kind == "retry" and op.ok is not False and op.job_id:
            retried[op.job_id].append(op.invoked)
    return due, delayed, retried


def check_run_at(ops: Sequence[Op], runs: Sequence[Run], violations: list[str]) -> Clocks:
    """No run began before its job was due: its ``run_at``, or a user's retry sent earlier."""
    due, delayed, retried = _due(ops)
    clocks = Clocks(delayed=len(delayed))
    for run in runs:
        if run.clock:
            clocks.skewed_runs[run.worker, run.clock] += 1
        if run.job_id not in due:
            continue
        run_at = min([due[run.job_id], *(t for t in retried[run.job_id] if t <= run.started)])
        if run.job_id in delayed and run_at == due[run.job_id]:
            clocks.delayed_on_skewed += bool(run.clock)
            after = run.started - run_at
            clocks.earliest = after if clocks.earliest is None else min(clocks.earliest, after)
        if run.started < run_at - EARLY_SLACK:
            violations.append(
                f"{run.job_id}: attempt {run.attempt} started {run_at - run.started:.1f} s before"
                f" its run_at, on worker {run.worker} (its clock {run.clock:+.0f} s)"
            )
    return clocks
