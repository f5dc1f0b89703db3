"""Periodic jobs: schedules declared in code with ``@app.periodic``, and when each is due.

Pure: no I/O. A schedule runs a task on a cron expression (five fields, read by ``cronsim``,
in the schedule's time zone) or every N seconds (at whole multiples of N since the Unix epoch,
so every worker computes the same due times). The scheduler (worker/schedules.py) turns each
due time into one ordinary job; the store keeps the pause state and the next due time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar, get_args, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.tasks import Task
from jobhandler.model.validation import check_name

T = TypeVar("T")
R = TypeVar("R")

# What a restart does about due times that passed while nothing was running (or that the
# scheduler reached later than the grace, ``Settings.schedule_grace``): "skip" drops them and
# waits for the next due time; "catch_up" runs once, for the latest of them.
Missed = Literal["skip", "catch_up"]
MISSED_POLICIES: tuple[Missed, ...] = get_args(Missed)
MIN_EVERY = 1.0  # seconds: the shortest interval a schedule may have
MAX_EVERY = 366 * 86400.0
_TICK = timedelta(microseconds=1)


class ScheduleNotFound(JobHandlerError, LookupError):
    """No schedule of that name is stored."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule is due: ``cron`` in ``timezone``, or ``every`` seconds. Checked when made."""

    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a periodic job needs either cron= or every=, not both or neither")
        if self.every is not None:
            every = self.every
            if isinstance(every, bool) or not isinstance(every, int | float):
                raise ValueError(f"every must be a number of seconds, not {every!r}")
            if not (math.isfinite(every) and MIN_EVERY <= every <= MAX_EVERY):
                raise ValueError(f"every must be {MIN_EVERY:g} to {MAX_EVERY:g} seconds")
            object.__setattr__(self, "every", float(every))
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(zone))
            except CronSimError as exc:
                raise ValueError(f"bad cron expression {self.cron!r}: {exc}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # cached by zoneinfo

    def next_after(self, t: float) -> float:
        """The first due time strictly after ``t`` (epoch seconds)."""
        if self.every is not None:
            due = (math.floor(t / self.every) + 1) * self.every
            return due if due > t else due + self.every
        return next(self._cron(datetime.fromtimestamp(t, self.zone))).timestamp()

    def latest_until(self, t: float) -> float:
        """The last due time at or before ``t``."""
        if self.every is not None:
            due = math.floor(t / self.every) * self.every
            return due if due <= t else due - self.every
        start = datetime.fromtimestamp(t, self.zone) + _TICK  # cronsim's reverse is strict
        return next(self._cron(start, reverse=True)).timestamp()

    def _cron(self, start: datetime, reverse: bool = False) -> Iterator[datetime]:
        assert self.cron is not None
        return CronSim(self.cron, start, reverse=reverse)


@dataclass(frozen=True, slots=True)
class Periodic:
    """One declared schedule: a task, its fixed payload (checked JSON), its timing, its policy."""

    name: str
    task: str
    timing: Timing
    payload: Any = None
    missed: Missed = "skip"

    @classmethod
    def of(
        cls, task: Task[Any, Any], timing: Timing, name: str | None, payload: Any, missed: str
    ) -> Periodic:
        """A schedule of ``task``; its payload is checked against the task's payload type now,
        at declaration (InvalidPayload), not when the first run is due."""
        if missed not in MISSED_POLICIES:
            raise ValueError(f"missed must be one of {', '.join(MISSED_POLICIES)}, not {missed!r}")
        checked = task.dump_payload(payload)
        policy: Missed = "catch_up" if missed == "catch_up" else "skip"
        return cls(check_name(name or task.name, "schedule"), task.name, timing, checked, policy)


class ScheduleRegistry:
    """The schedules one App declares, by name."""

    def __init__(self) -> None:
        self._schedules: dict[str, Periodic] = {}

    def add(self, schedule: Periodic) -> None:
        if schedule.name in self._schedules:
            raise ValueError(
                f"a schedule named {schedule.name!r} is already declared: give name= to "
                "run one task on several schedules"
            )
        self._schedules[schedule.name] = schedule

    def __iter__(self) -> Iterator[Periodic]:
        return iter(self._schedules.values())

    def __len__(self) -> int:
        return len(self._schedules)


class PeriodicDecorator(Protocol):
    """What ``@app.periodic(...)`` returns: a task stays the task it was; a plain function is
    registered as a task first."""

    @overload
    def __call__(self, target: Task[T, R], /) -> Task[T, R]: ...
    @overload
    def __call__(self, target: Callable[..., Any], /) -> Task[Any, Any]: ...


def periodic_decorator(
    register: Callable[[Callable[..., Any]], Task[Any, Any]],
    registry: ScheduleRegistry,
    timing: Timing,
    name: str | None,
    payload: Any,
    missed: str,
) -> PeriodicDecorator:
    """``App.periodic``'s decorator: declares the schedule of the task it is given (a function is
    registered with ``register``, the app's ``task``)."""

    def declare(target: Any) -> Any:
        task = target if isinstance(target, Task) else register(target)
        registry.add(Periodic.of(task, timing, name, payload, missed))
        return task

    return declare
