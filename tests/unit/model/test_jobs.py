"""The state machine: which status may follow which."""

from __future__ import annotations

from jobhandler.model.jobs import TERMINAL, TRANSITIONS, JobStatus, Transition, can_apply


def test_statuses_are_the_go_services_words_plus_scheduled_and_waiting() -> None:
    assert [s.value for s in JobStatus] == [
        "queued",
        "scheduled",
        "processing",
        "completed",
        "failed",
        "cancelled",
        "waiting",
    ]


def test_terminal_statuses() -> None:
    assert {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED} == TERMINAL
    assert all(s.terminal for s in TERMINAL)
    assert not JobStatus.PROCESSING.terminal


def test_only_a_user_retry_leaves_a_terminal_status() -> None:
    # RESTORE follows a user's retry of the parent whose failure cancelled the job; HOLD is a
    # user's retry of a job whose parents are not all settled.
    leaving_terminal = {t for t, edge in TRANSITIONS.items() if edge.sources & TERMINAL}
    assert leaving_terminal == {Transition.RETRY, Transition.RESTORE, Transition.HOLD}
    assert TRANSITIONS[Transition.RETRY].sources == {JobStatus.FAILED, JobStatus.CANCELLED}


def test_worker_outcomes_start_from_processing() -> None:
    for t in (
        Transition.ABORT,
        Transition.COMPLETE,
        Transition.FAIL,
        Transition.RETRY_LATER,
        Transition.RELEASE,
        Transition.RESCUE,
        Transition.RESCUE_FAIL,
    ):
        assert TRANSITIONS[t].sources == {JobStatus.PROCESSING}


def test_cancel_and_claim_sources() -> None:
    assert can_apply(Transition.CANCEL, JobStatus.QUEUED)
    assert can_apply(Transition.CANCEL, JobStatus.SCHEDULED)
    assert not can_apply(Transition.CANCEL, JobStatus.PROCESSING)  # its worker stops it: ABORT
    assert can_apply(Transition.ABORT, JobStatus.PROCESSING)
    assert not can_apply(Transition.CANCEL, JobStatus.COMPLETED)
    assert can_apply(Transition.CLAIM, JobStatus.SCHEDULED)
    assert not can_apply(Transition.CLAIM, JobStatus.PROCESSING)


def test_job_ids_are_uuid7_and_grow_with_time() -> None:
    import time
    import uuid

    from jobhandler.model.jobs import new_job_id

    first = new_job_id()
    time.sleep(0.002)  # ids are ordered by their millisecond, so step past one
    second = new_job_id()
    assert uuid.UUID(first).version == 7 and uuid.UUID(first).variant == uuid.RFC_4122
    assert first < second
    assert len({new_job_id() for _ in range(10_000)}) == 10_000
