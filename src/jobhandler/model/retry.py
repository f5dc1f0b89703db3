"""When a failed run is tried again: exponential backoff with jitter, capped. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass

from jobhandler.model.jobs import Job


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0  # seconds before the second attempt
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2  # each delay is spread by up to this fraction either way

    def delay(self, attempts_used: int, rng: random.Random | None = None) -> float:
        """The wait after the ``attempts_used``-th failed attempt (1 for the first)."""
        exponent = max(attempts_used - 1, 0)
        # Cap the exponent too, so a huge attempt count cannot overflow the float.
        raw = min(self.base * self.factor ** min(exponent, 64), self.max_delay)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(raw * (1 + spread), self.max_delay))

    def decide(self, job: Job, now: float, rng: random.Random | None = None) -> float | None:
        """The time the job should run again, or None when its attempts are used up."""
        if not job.attempts_left:
            return None
        return now + self.delay(job.attempts_used, rng)
