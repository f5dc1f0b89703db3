"""A history checker for chaos runs, in the manner of Jepsen's queue checkers.

A chaos test records three things while faults are injected, and the store's final state after:

- every client operation with its answer and times (``Op``): a submit acknowledged with the
  job's id, a cancel or a retry with the status it returned, each status a client read;
- every run, as logged by the task body itself (``Run``): job id, attempt, the worker process
  that ran it, a token of its own, when it started and (if it got that far) when it returned;
- every fault injected (``Fault``): which worker process, what, from when to when;
- the final state read over the API (``FinalJob``): status, attempt, result, the attempts list.

``check`` proves, from these alone:

1. no acknowledged job is lost: each is in the store, and finished once the test drained it;
2. a job seen in a final state never leaves it, unless a user's retry was acknowledged (or
   unanswered) in between;
3. no job has two completed runs whose outcomes both landed: at most one attempt is recorded as
   completed, and a completed job's result is the one written by the run of its final attempt;
   no attempt runs twice (a double claim), unless a database crash lost the first run's claim
   (a ``Fault`` that ``loses_commits``: the job was then claimed again with the same attempt);
4. a cancel answered ``cancelled`` means no run of the job starts afterwards (unless retried);
5. every duplicate run (a new attempt after one that did not end by itself) is explained by a
   fault: the earlier attempt ended by lease expiry (``worker lost``) or was handed back
   (``interrupted``), and a fault was injected into the worker process that ran it;
6. a fenced (stale) run never wrote: its token is never the job's result, and its attempt is
   never recorded with the outcome the stale run would have written;
7. no run started before its job's ``run_at``, though some workers' clocks run 30 s off
   (tests/chaos/clocks.py; their leases are judged right by check 5).

It returns a ``Summary`` (counts for the log) and a list of violations, each a sentence.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from tests.chaos.clocks import Clocks, check_run_at

FINAL = frozenset({"completed", "failed", "cancelled"})
WORKER_LOST = "worker lost"  # the error a rescue (lease expiry) records on the attempt
# How long before its run starts a claim may have committed: a database crash this long before
# a run began may still have lost the run's claim.
CLAIM_SLACK = 2.0
OpKind = Literal["submit", "cancel", "retry", "read"]


@dataclass(frozen=True)
class Op:
    """One client operation. ``ok``: True acknowledged (2xx), False refused (no effect, e.g.
    409), None unknown (the request failed in flight: it may or may not have taken effect)."""

    kind: OpKind
    job_id: str | None
    invoked: float
    completed: float
    ok: bool | None
    status: str | None = None  # the job's status in the answer
    attempt: int | None = None  # the job's attempt in the answer
    run_at: float | None = None  # when the job is due, in the answer (the database's clock)


@dataclass(frozen=True)
class Run:
    """One run, as the task body logged it. ``ended`` is None if it never returned (killed).
    Its times are on the host's clock, also when its worker's clock runs ``clock`` seconds off
    (tests/apps/chaosapp.py)."""

    job_id: str
    attempt: int
    worker: str  # the process that ran it (e.g. its pid)
    token: str  # unique to this run; the task returns it in its result
    started: float
    ended: float | None = None
    clock: float = 0.0


@dataclass(frozen=True)
class Fault:
    kind: str  # kill-9, sigstop, pg-terminate, ...
    workers: frozenset[str]  # the worker processes it hit
    started: float
    ended: float
    # A crash of the database (PostgreSQL stopped in ``immediate`` mode): the commits made
    # without waiting for the disk just before it (claims, heartbeats, outcomes: PostgreSQL's
    # ``synchronous_commit = off``, store/postgres/dialect.py) may be lost.
    loses_commits: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    attempt: int
    outcome: str | None  # the status the run left the job in, "interrupted", or None (running)
    error: str | None = None
    after_user_retry: bool = False


@dataclass(frozen=True)
class FinalJob:
    id: str
    status: str
    attempt: int
    result: Any
    attempts: Sequence[AttemptRecord] = ()


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    final: dict[str, FinalJob] = field(default_factory=dict)


@dataclass
class Summary:
    faults: Counter[str]
    jobs: int  # acknowledged submits
    runs: int
    duplicates: Counter[str]  # duplicate runs by cause
    retries_after_failure: int  # new attempts after a run that failed (a normal retry)
    user_retries: int
    lost: int
    final: Counter[str]
    fenced_returns: int = 0  # fenced runs that returned and tried to write (and were refused)
    cancels_while_waiting: int = 0  # cancels answered ``cancelled`` (the job then never ran)
    clocks: Clocks = field(default_factory=Clocks)

    def __str__(self) -> str:
        faults = ", ".join(f"{k} x{n}" for k, n in sorted(self.faults.items())) or "none"
        dups = ", ".join(f"{k} x{n}" for k, n in sorted(self.duplicates.items())) or "none"
        ends = ", ".join(f"{k} {n}" for k, n in sorted(self.final.items()))
        return (
            f"faults injected: {faults}; jobs acknowledged: {self.jobs} ({ends}); runs: "
            f"{self.runs}; duplicate runs: {sum(self.duplicates.values())} ({dups}); retries "
            f"after a failure: {self.retries_after_failure}; user retries: {self.user_retries};"
            f" fenced runs that returned (their writes refused): {self.fenced_returns};"
            f" cancels acknowledged: {self.cancels_while_waiting}; {self.clocks}; lost: {self.lost}"
        )


def _token(result: Any) -> str | None:
    return result.get("token") if isinstance(result, dict) else None


def _ops_by_job(ops: Iterable[Op]) -> dict[str, list[Op]]:
    by_job: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.job_id is not None:
            by_job[op.job_id].append(op)
    return by_job


def _retried_between(ops: Sequence[Op], after: float, before: float) -> bool:
    """Was a retry that may have taken effect (acknowledged or unanswered) in flight between?"""
    return any(
        op.kind == "retry" and op.ok is not False and op.completed >= after and op.invoked <= before
        for op in ops
    )


def _check_lost(history: History, violations: list[str]) -> int:
    acked = {op.job_id for op in history.ops if op.kind == "submit" and op.ok and op.job_id}
    submitted = {op.job_id for op in history.ops if op.kind == "submit" and op.job_id}
    lost = 0
    for job_id in sorted(acked):
        job = history.final.get(job_id)
        if job is None:
            lost += 1
            violations.append(f"{job_id}: lost: its submit was acknowledged, the store has no job")
        elif job.status not in FINAL:
            lost += 1
            violations.append(f"{job_id}: never finished: still {job.status} after the drain")
    for job_id in sorted({r.job_id for r in history.runs} - submitted):
        violations.append(f"{job_id}: unexpected: it ran, and no client submitted it")
    return lost


def _check_final_states(history: History, violations: list[str]) -> None:
    """Once a client saw a job final, every later view (the final read included) agrees."""
    end = float("inf")
    for job_id, ops in _ops_by_job(history.ops).items():
        views = [op for op in ops if op.ok and op.status is not None]
        job = history.final.get(job_id)
        if job is not None:
            views.append(Op("read", job_id, end, end, True, job.status, job.attempt))
        for seen in views:
            if seen.status not in FINAL:
                continue
            for later in views:
                if later.invoked <= seen.completed or later.status == seen.status:
                    continue
                if not _retried_between(ops, seen.invoked, later.completed):
                    violations.append(
                        f"{job_id}: left a final state: seen {seen.status} (attempt "
                        f"{seen.attempt}), later {later.status} (attempt {later.attempt}) "
                        "with no user retry in between"
                    )
                    break


def _lost_claim(faults: Sequence[Fault], first: Run, again: Run) -> str | None:
    """The database crash that explains a second run of one attempt, if any: it lost the
    claim of the first run (committed without waiting for the disk, shortly before the run
    started), so the job was claimed afresh, with the same attempt, after the crash."""
    for fault in faults:
        crashed = fault.loses_commits and fault.started <= again.started
        if crashed and fault.ended >= first.started - CLAIM_SLACK:
            return fault.kind
    return None


def _check_runs_per_attempt(
    job_id: str, runs: Sequence[Run], faults: Sequence[Fault], violations: list[str]
) -> Counter[str]:
    """Each attempt runs once, unless a database crash lost its claim (see ``_lost_claim``)."""
    lost_claims: Counter[str] = Counter()
    per_attempt: dict[int, list[Run]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.started):
        per_attempt[run.attempt].append(run)
    for attempt, same in sorted(per_attempt.items()):
        crashes = [_lost_claim(faults, a, b) for a, b in pairwise(same)]
        if None in crashes:
            violations.append(f"{job_id}: attempt {attempt} ran {len(same)} times (a double claim)")
        else:
            lost_claims.update(f"claim lost in {crash}" for crash in crashes)
    return lost_claims


def _check_landed(history: History, violations: list[str]) -> Counter[str]:
    """At most one completion landed, and a completed job's result is its final run's.
    Returns the second runs of an attempt that a database crash explains, by cause."""
    runs_of: dict[str, list[Run]] = defaultdict(list)
    for run in history.runs:
        runs_of[run.job_id].append(run)
    lost_claims: Counter[str] = Counter()
    for job_id, job in history.final.items():
        completed = [a.attempt for a in job.attempts if a.outcome == "completed"]
        if len(completed) > 1:
            violations.append(f"{job_id}: two completions landed: attempts {completed}")
        lost_claims += _check_runs_per_attempt(job_id, runs_of[job_id], history.faults, violations)
        if job.status != "completed":
            continue
        token = _token(job.result)
        writers = [r for r in runs_of[job_id] if r.token == token]
        if len(writers) != 1:
            violations.append(f"{job_id}: completed with a result no logged run returned")
        elif writers[0].attempt != job.attempt:
            violations.append(
                f"{job_id}: stale result: attempt {writers[0].attempt}'s result landed on "
                f"attempt {job.attempt}"
            )
    return lost_claims


def _check_cancels(history: History, violations: list[str]) -> None:
    """A cancel answered ``cancelled`` (not ``processing``: a running job is asked to stop):
    no run of the job starts afterwards, and none has a later attempt, unless retried."""
    runs_of: dict[str, list[Run]] = defaultdict(list)
    for run in history.runs:
        runs_of[run.job_id].append(run)
    for job_id, ops in _ops_by_job(history.ops).items():
        for cancel in ops:
            if cancel.kind != "cancel" or not cancel.ok or cancel.status != "cancelled":
                continue
            for run in runs_of[job_id]:
                newer = cancel.attempt is not None and run.attempt > cancel.attempt
                if not (newer or run.started > cancel.completed):
                    continue
                if not _retried_between(ops, cancel.invoked, run.started):
                    violations.append(
                        f"{job_id}: attempt {run.attempt} started after a cancel was "
                        f"acknowledged at attempt {cancel.attempt}"
                    )


def _fault_hit(faults: Sequence[Fault], run: Run, until: float) -> str | None:
    """The fault that hit the run's worker while the run was live, if any: the narrowest first
    (a kill of its process explains more than connections cut on every worker at that time).
    A run is live from its claim, up to CLAIM_SLACK before its body logged its start: a worker
    frozen between the two starts the body just after it thaws, its lease long gone."""
    for fault in sorted(faults, key=lambda f: len(f.workers)):
        live_from = run.started - CLAIM_SLACK
        if run.worker in fault.workers and fault.started <= until and fault.ended >= live_from:
            return fault.kind
    return None


def _classify_reruns(history: History, violations: list[str]) -> tuple[Counter[str], int, int]:
    """Why each attempt after the first ran: a fault (a duplicate), a failure, a user retry."""
    duplicates: Counter[str] = Counter()
    after_failure = user_retries = 0
    runs = {(r.job_id, r.attempt): r for r in history.runs}
    for job_id, job in history.final.items():
        records = {a.attempt: a for a in job.attempts}
        for attempt in sorted(records):
            record = records[attempt]
            earlier = [a for a in records if a < attempt]
            if record.after_user_retry:
                user_retries += 1
                continue
            if not earlier:
                continue
            prior = records[max(earlier)]
            if prior.error == WORKER_LOST or prior.outcome == "interrupted":
                cause = "lease expired" if prior.error == WORKER_LOST else "handed back"
                stale = runs.get((job_id, prior.attempt))
                if stale is None:  # claimed, died before the task body logged: no run to repeat
                    continue
                fault = _fault_hit(history.faults, stale, float("inf"))
                if fault is None:
                    violations.append(
                        f"{job_id}: unexplained duplicate: attempt {prior.attempt} {cause} "
                        "with no fault injected into its worker"
                    )
                duplicates[f"{cause} after {fault or 'no fault'}"] += 1
            elif prior.outcome == "scheduled":
                after_failure += 1
            else:
                violations.append(
                    f"{job_id}: unexplained duplicate: attempt {attempt} ran after attempt "
                    f"{prior.attempt} ended {prior.outcome}"
                )
    return duplicates, after_failure, user_retries


def _check_fenced(history: History, violations: list[str]) -> int:
    """A run whose attempt was taken from it (lease expired) wrote nothing: the attempt is not
    recorded as completed, and the job's result is not its. Counts those that returned."""
    returned = 0
    for run in history.runs:
        job = history.final.get(run.job_id)
        if job is None:
            continue
        record = next((a for a in job.attempts if a.attempt == run.attempt), None)
        if record is None:
            violations.append(f"{run.job_id}: attempt {run.attempt} ran, and is not recorded")
            continue
        if record.error != WORKER_LOST:
            continue
        returned += run.ended is not None
        if _token(job.result) == run.token:
            violations.append(
                f"{run.job_id}: stale write landed: fenced attempt {run.attempt}'s result is "
                "the job's result"
            )
    return returned


def check(history: History) -> tuple[Summary, list[str]]:
    """Check a whole history; an empty list of violations means every property held."""
    violations: list[str] = []
    lost = _check_lost(history, violations)
    _check_final_states(history, violations)
    lost_claims = _check_landed(history, violations)
    _check_cancels(history, violations)
    fenced_returns = _check_fenced(history, violations)
    duplicates, after_failure, user_retries = _classify_reruns(history, violations)
    duplicates += lost_claims
    clocks = check_run_at(history.ops, history.runs, violations)
    acked = {op.job_id for op in history.ops if op.kind == "submit" and op.ok}
    summary = Summary(
        faults=Counter(f.kind for f in history.faults),
        jobs=len(acked),
        runs=len(history.runs),
        duplicates=duplicates,
        retries_after_failure=after_failure,
        user_retries=user_retries,
        lost=lost,
        final=Counter(j.status for j in history.final.values() if j.id in acked),
        fenced_returns=fenced_returns,
        cancels_while_waiting=sum(
            1 for op in history.ops if op.kind == "cancel" and op.ok and op.status == "cancelled"
        ),
        clocks=clocks,
    )
    return summary, violations
