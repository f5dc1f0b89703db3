"""The history checker objects to each kind of broken history, and passes a clean one.

Each test builds a small history by hand: a clean one with a kill -9 (a duplicate explained by
its fault), a failure retried, a user retry and a cancel; then one thing broken in it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.chaos.history import (
    AttemptRecord,
    Fault,
    FinalJob,
    History,
    Op,
    Run,
    check,
)

LOST = "worker lost"


def result(token: str) -> dict[str, str]:
    return {"token": token}


def clean() -> History:
    """Four jobs: a runs once; b's worker is killed, b runs again elsewhere; c fails, is
    retried by its user and completes; d is cancelled while queued."""
    ops = [
        Op("submit", "a", 1.0, 1.1, True, "queued", 0),
        Op("submit", "b", 1.0, 1.1, True, "queued", 0),
        Op("submit", "c", 1.0, 1.1, True, "queued", 0),
        Op("submit", "d", 1.0, 1.1, True, "queued", 0),
        Op("cancel", "d", 1.2, 1.3, True, "cancelled", 0),
        Op("read", "a", 3.0, 3.1, True, "completed", 1),
        Op("read", "c", 3.0, 3.1, True, "failed", 1),
        Op("retry", "c", 3.2, 3.3, True, "queued", 1),
        Op("read", "c", 6.0, 6.1, True, "completed", 2),
    ]
    runs = [
        Run("a", 1, "w1", "a1", 1.5, 1.6),
        Run("b", 1, "w2", "b1", 1.5, None),  # killed with its worker
        Run("b", 2, "w1", "b2", 4.5, 4.6),
        Run("c", 1, "w1", "c1", 1.7, 1.8),
        Run("c", 2, "w1", "c2", 3.5, 3.6),
    ]
    final = {
        "a": FinalJob("a", "completed", 1, result("a1"), [AttemptRecord(1, "completed")]),
        "b": FinalJob(
            "b",
            "completed",
            2,
            result("b2"),
            [AttemptRecord(1, "scheduled", LOST), AttemptRecord(2, "completed")],
        ),
        "c": FinalJob(
            "c",
            "completed",
            2,
            result("c2"),
            [AttemptRecord(1, "failed", "boom"), AttemptRecord(2, "completed", None, True)],
        ),
        "d": FinalJob("d", "cancelled", 0, None, []),
    }
    faults = [Fault("kill-9", frozenset({"w2"}), 2.0, 2.0)]
    return History(ops, runs, faults, final)


def test_a_clean_history_passes_and_is_summarised() -> None:
    summary, violations = check(clean())
    assert violations == []
    assert summary.jobs == 4 and summary.runs == 5 and summary.lost == 0
    assert dict(summary.duplicates) == {"lease expired after kill-9": 1}
    assert summary.user_retries == 1
    assert "lost: 0" in str(summary) and "kill-9 x1" in str(summary)


def test_a_lost_job_is_reported() -> None:
    history = clean()
    del history.final["a"]
    summary, violations = check(history)
    assert summary.lost == 1
    assert violations == ["a: lost: its submit was acknowledged, the store has no job"]


def test_a_job_never_finished_is_reported() -> None:
    history = clean()
    history.final["a"] = replace(history.final["a"], status="processing")
    _, violations = check(history)
    assert "a: never finished: still processing after the drain" in violations


def test_a_job_leaving_a_final_state_is_reported() -> None:
    history = clean()
    history.ops.append(Op("read", "a", 4.0, 4.1, True, "scheduled", 2))
    _, violations = check(history)
    assert any(v.startswith("a: left a final state: seen completed") for v in violations)


def test_a_final_state_changed_by_an_acknowledged_retry_is_not_a_violation() -> None:
    _, violations = check(clean())  # c: failed, retried, completed
    assert not [v for v in violations if v.startswith("c:")]


def test_a_final_state_that_the_final_read_contradicts_is_reported() -> None:
    history = clean()
    history.final["d"] = replace(history.final["d"], status="failed")
    _, violations = check(history)
    assert any(v.startswith("d: left a final state: seen cancelled") for v in violations)


def test_two_landed_completions_are_reported() -> None:
    history = clean()
    b = history.final["b"]
    history.final["b"] = replace(
        b, attempts=[AttemptRecord(1, "completed"), AttemptRecord(2, "completed")]
    )
    _, violations = check(history)
    assert "b: two completions landed: attempts [1, 2]" in violations


def test_a_double_claim_of_one_attempt_is_reported() -> None:
    history = clean()
    history.runs.append(Run("a", 1, "w2", "a1-bis", 1.5, 1.6))
    _, violations = check(history)
    assert "a: attempt 1 ran 2 times (a double claim)" in violations


def test_a_run_after_an_acknowledged_cancel_is_reported() -> None:
    history = clean()
    history.runs.append(Run("d", 1, "w1", "d1", 2.0, 2.1))
    history.final["d"] = replace(history.final["d"], attempts=[AttemptRecord(1, "cancelled")])
    _, violations = check(history)
    assert "d: attempt 1 started after a cancel was acknowledged at attempt 0" in violations


def test_an_unexplained_duplicate_is_reported() -> None:
    history = clean()
    history.faults.clear()  # b's first attempt lost its lease, and nothing was done to w2
    summary, violations = check(history)
    assert violations == [
        "b: unexplained duplicate: attempt 1 lease expired with no fault injected into its worker"
    ]
    assert dict(summary.duplicates) == {"lease expired after no fault": 1}


def test_a_run_whose_worker_froze_between_its_claim_and_its_start_is_explained() -> None:
    """The worker claimed b, froze before b's body began, and began it just after it thawed:
    the body's start comes after the freeze, the claim (and the lease it lost) before."""
    history = clean()
    history.faults[:] = [Fault("sigstop", frozenset({"w2"}), 0.4, 1.484)]
    summary, violations = check(history)
    assert violations == []
    assert dict(summary.duplicates) == {"lease expired after sigstop": 1}


def test_a_rerun_after_a_completed_attempt_is_reported() -> None:
    history = clean()
    b = history.final["b"]
    history.final["b"] = replace(
        b, attempts=[AttemptRecord(1, "completed"), AttemptRecord(2, "completed")]
    )
    _, violations = check(history)
    assert "b: unexplained duplicate: attempt 2 ran after attempt 1 ended completed" in violations


def test_a_stale_result_is_reported() -> None:
    history = clean()
    # b's fenced first run wrote its result over the second's.
    history.final["b"] = replace(history.final["b"], result=result("b1"))
    _, violations = check(history)
    assert "b: stale result: attempt 1's result landed on attempt 2" in violations
    assert "b: stale write landed: fenced attempt 1's result is the job's result" in violations


def test_a_result_no_run_returned_is_reported() -> None:
    history = clean()
    history.final["a"] = replace(history.final["a"], result=result("forged"))
    _, violations = check(history)
    assert violations == ["a: completed with a result no logged run returned"]


def test_a_run_the_store_never_recorded_is_reported() -> None:
    history = clean()
    history.runs.append(Run("a", 2, "w1", "a2", 2.0, 2.1))
    _, violations = check(history)
    assert "a: attempt 2 ran, and is not recorded" in violations


def test_an_unsubmitted_job_that_ran_is_reported() -> None:
    history = clean()
    history.runs.append(Run("z", 1, "w1", "z1", 2.0, 2.1))
    _, violations = check(history)
    assert "z: unexpected: it ran, and no client submitted it" in violations


def test_a_fenced_run_that_returned_is_counted_and_its_write_refused() -> None:
    history = clean()
    history.runs[1] = replace(history.runs[1], ended=5.0)  # b's first run woke and returned
    summary, violations = check(history)
    assert violations == []
    assert summary.fenced_returns == 1
    assert summary.cancels_while_waiting == 1


def test_an_attempt_run_twice_after_a_database_crash_lost_its_claim_is_explained() -> None:
    history = clean()
    history.runs.append(Run("a", 1, "w2", "a1-bis", 2.5, 2.6))
    history.faults.append(Fault("pg-restart immediate", frozenset({"w1", "w2"}), 1.7, 1.9, True))
    summary, violations = check(history)
    assert violations == []
    assert summary.duplicates["claim lost in pg-restart immediate"] == 1


def test_an_attempt_run_twice_around_a_restart_that_loses_no_commit_is_a_double_claim() -> None:
    history = clean()
    history.runs.append(Run("a", 1, "w2", "a1-bis", 2.5, 2.6))
    history.faults.append(Fault("pg-restart fast", frozenset({"w1", "w2"}), 1.7, 1.9))
    _, violations = check(history)
    assert "a: attempt 1 ran 2 times (a double claim)" in violations


def test_an_attempt_run_twice_long_after_a_database_crash_is_a_double_claim() -> None:
    history = clean()
    history.runs.append(Run("a", 1, "w2", "a1-bis", 9.5, 9.6))
    history.runs[0] = replace(history.runs[0], started=6.0, ended=6.1)  # claimed after it
    history.faults.append(Fault("pg-restart immediate", frozenset({"w1", "w2"}), 1.7, 1.9, True))
    _, violations = check(history)
    assert "a: attempt 1 ran 2 times (a double claim)" in violations


def delayed(history: History, job_id: str, run_at: float) -> History:
    """``job_id`` acknowledged due at ``run_at`` (later than its submit's answer)."""
    history.ops[:] = [
        replace(op, run_at=run_at) if op.kind == "submit" and op.job_id == job_id else op
        for op in history.ops
    ]
    return history


def test_a_run_started_before_its_run_at_is_reported() -> None:
    history = delayed(clean(), "a", 4.0)
    history.runs[0] = replace(history.runs[0], clock=30.0)  # a worker that judged due too soon
    summary, violations = check(history)
    assert violations == [
        "a: attempt 1 started 2.5 s before its run_at, on worker w1 (its clock +30 s)"
    ]
    assert summary.clocks.delayed == 1 and summary.clocks.earliest == -2.5


def test_runs_on_time_on_skewed_workers_pass_and_are_summarised() -> None:
    # a due at 1.2 starts at 1.5; c's first run starts 0.3 s before its run_at: within the
    # second a host may be off and still count as in sync.
    history = delayed(delayed(clean(), "a", 1.2), "c", 2.0)
    history.runs[:] = [replace(r, clock=30.0 if r.worker == "w1" else -30.0) for r in history.runs]
    summary, violations = check(history)
    assert violations == []
    assert summary.clocks.delayed == 2 and summary.clocks.delayed_on_skewed == 3
    assert summary.clocks.earliest == pytest.approx(-0.3)
    assert "workers with skewed clocks: w1 +30 s (4 runs), w2 -30 s (1 runs)" in str(summary)


def test_a_run_before_run_at_after_a_users_retry_is_not_a_violation() -> None:
    # d, due at 9.0, cancelled while it waits, then retried by its user: due at once.
    history = delayed(clean(), "d", 9.0)
    history.ops.append(Op("retry", "d", 2.0, 2.1, True, "queued", 0))
    history.runs.append(Run("d", 1, "w1", "d1", 2.5, 2.6, clock=30.0))
    history.final["d"] = FinalJob(
        "d", "completed", 1, result("d1"), [AttemptRecord(1, "completed", None, True)]
    )
    summary, violations = check(history)
    assert violations == []
    assert summary.clocks.delayed == 1 and summary.clocks.earliest is None
    assert "(0 runs on skewed workers; the earliest start minus its run_at: none)" in str(summary)
