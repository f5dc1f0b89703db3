"""The retry policy: exponential, jittered, capped, and it gives up when attempts run out."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.retry import RetryPolicy


def job(attempt: int, max_attempts: int, uncounted: int = 0) -> Job:
    return Job(
        id="j",
        task="t",
        queue="q",
        payload=None,
        status=JobStatus.PROCESSING,
        priority=0,
        attempt=attempt,
        max_attempts=max_attempts,
        uncounted=uncounted,
        timeout=None,
        run_at=0,
        created_at=0,
        updated_at=0,
    )


def test_delays_double_without_jitter() -> None:
    policy = RetryPolicy(base=1, factor=2, max_delay=100, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert policy.delay(50) == 100


@given(attempt=st.integers(1, 10_000), seed=st.integers())
def test_delay_stays_within_jitter_and_cap(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base=0.5, factor=3, max_delay=60, jitter=0.25)
    d = policy.delay(attempt, random.Random(seed))
    raw = min(0.5 * 3 ** (attempt - 1), 60) if attempt < 64 else 60
    assert 0 <= d <= 60
    assert raw * 0.75 - 1e-9 <= d <= raw * 1.25 + 1e-9


def test_decide_gives_up_when_attempts_are_used() -> None:
    policy = RetryPolicy(jitter=0)
    assert policy.decide(job(1, 3), now=100) == 101
    assert policy.decide(job(3, 3), now=100) is None


def test_uncounted_claims_do_not_use_attempts() -> None:
    policy = RetryPolicy(jitter=0)
    released_once = replace(job(3, 3), uncounted=1)
    assert policy.decide(released_once, now=0) == 2  # second real attempt failed
