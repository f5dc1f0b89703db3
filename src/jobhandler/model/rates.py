"""Rate limits as written ("100/s", "10/min"): parsed once, pure, shared by the edge and the
store (which keeps the count and the period beside the text)."""

from __future__ import annotations

import re
from dataclasses import dataclass

PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
RATE_PATTERN = r"^\s*([1-9][0-9]{0,8})\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$"
_RATE = re.compile(RATE_PATTERN)
MAX_CONCURRENCY = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` jobs per ``period`` seconds, at most ``count`` at once (the bucket's size)."""

    count: int
    period: float

    @property
    def text(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}[self.period]
        return f"{self.count}/{unit}"


def parse_rate(text: str) -> Rate:
    """``"100/s"`` as Rate(100, 1.0); ValueError for anything else (or a count of 0)."""
    found = _RATE.match(text)
    if found is None or int(found.group(1)) < 1:
        raise ValueError(
            f"a rate limit looks like 100/s, 10/min or 5/h (a count of 1 or more), not {text!r}"
        )
    return Rate(int(found.group(1)), PERIODS[found.group(2)])


def check_concurrency(value: int) -> int:
    """A concurrency limit: 1 to MAX_CONCURRENCY (pause a queue to run none)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"concurrency must be a whole number, not {value!r}")
    if not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be 1 to {MAX_CONCURRENCY} (pause to run none)")
    return value
