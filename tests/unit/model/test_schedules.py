"""Declaring periodic jobs, and when each is due (pure: no store)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from jobhandler import App
from jobhandler.model.errors import InvalidPayload
from jobhandler.model.schedules import Timing


def ts(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_every_is_aligned_to_the_epoch_so_every_worker_agrees() -> None:
    timing = Timing(every=60)
    assert timing.next_after(120.0) == 180.0
    assert timing.next_after(125.5) == 180.0
    assert timing.latest_until(180.0) == 180.0
    assert timing.latest_until(179.9) == 120.0


def test_cron_in_a_time_zone_across_daylight_saving() -> None:
    berlin = Timing(cron="30 2 * * *", timezone="Europe/Berlin")
    # 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00): cronsim runs it
    # at 03:00, and the day after at 02:30 local again.
    first = berlin.next_after(ts("2026-03-28T12:00:00", "Europe/Berlin"))
    assert first == ts("2026-03-29T03:00:00", "Europe/Berlin")
    assert berlin.next_after(first) == ts("2026-03-30T02:30:00", "Europe/Berlin")
    assert berlin.latest_until(first) == first
    assert berlin.latest_until(first - 1) == ts("2026-03-28T02:30:00", "Europe/Berlin")
    every_5 = Timing(cron="*/5 * * * *")
    assert every_5.next_after(ts("2026-01-01T00:05:00")) == ts("2026-01-01T00:10:00")
    assert every_5.latest_until(ts("2026-01-01T00:09:59")) == ts("2026-01-01T00:05:00")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either cron= or every="),
        ({"cron": "* * * * *", "every": 5}, "either cron= or every="),
        ({"every": 0.5}, "every must be"),
        ({"every": float("nan")}, "every must be"),
        ({"every": True}, "number of seconds"),
        ({"cron": "61 * * * *"}, "bad cron expression"),
        ({"every": 5, "timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_timings_are_refused_at_declaration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Timing(**kwargs)  # type: ignore[arg-type]


class Report(BaseModel):
    kind: str
    days: int


def test_periodic_declares_a_schedule_of_a_task_or_a_function() -> None:
    app = App()

    @app.periodic(every=3600, payload={"kind": "daily", "days": 1}, missed="catch_up")
    @app.task(queue="reports")
    def report(payload: Report) -> str:
        return payload.kind

    @app.periodic(cron="0 3 * * *", timezone="Europe/Paris", name="nightly")
    async def cleanup() -> None: ...

    assert report(Report(kind="x", days=1)) == "x"  # still the task, callable as before
    assert cleanup.name == "cleanup" and "cleanup" in app.tasks
    hourly, nightly = list(app.periodics)
    assert (hourly.name, hourly.task, hourly.missed) == ("report", "report", "catch_up")
    assert hourly.payload == {"kind": "daily", "days": 1}
    assert (nightly.name, nightly.task, nightly.timing.timezone) == (
        "nightly",
        "cleanup",
        "Europe/Paris",
    )


def test_the_payload_is_checked_against_the_task_when_declared() -> None:
    app = App()

    @app.task
    def report(payload: Report) -> None: ...

    with pytest.raises(InvalidPayload) as caught:
        app.periodic(every=60, payload={"kind": "x", "days": "many"})(report)
    assert caught.value.errors[0]["loc"] == ["payload", "days"]


def test_one_name_per_schedule_and_a_known_policy() -> None:
    app = App()

    @app.periodic(every=60)
    @app.task
    def tick() -> None: ...

    with pytest.raises(ValueError, match="already declared"):
        app.periodic(every=30)(tick)
    app.periodic(every=30, name="tick-fast")(tick)
    with pytest.raises(ValueError, match="missed must be"):
        app.periodic(every=30, name="x", missed="run_all")(tick)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule name"):
        app.periodic(every=30, name="no spaces")(tick)
    assert [s.name for s in app.periodics] == ["tick", "tick-fast"]


def test_aligned_times_are_exact_for_whole_seconds() -> None:
    now = datetime(2026, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC).timestamp()
    one = Timing(every=1)
    assert one.next_after(now) == int(now) + 1 and one.latest_until(now) == int(now)
