"""The checks before any write: pure functions, and the Task/JobOptions paths that call them."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from jobhandler import App
from jobhandler.model.errors import InvalidOptions, InvalidPayload, InvalidResult
from jobhandler.model.records import decode_cursor, encode_cursor
from jobhandler.model.tasks import JobOptions, job_options
from jobhandler.model.validation import (
    JsonLimits,
    check_name,
    is_job_id,
    json_errors,
    name_error,
    run_at_problem,
)

LIMITS = JsonLimits(max_depth=64, max_bytes=1000)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "loc", "kind"),
    [
        (math.nan, ["p"], "finite_number"),
        ({"a": [1, math.inf]}, ["p", "a", 1], "finite_number"),
        ({"a": -math.inf}, ["p", "a"], "finite_number"),
        ("x\x00y", ["p"], "nul_character"),
        ({"k\x00": 1}, ["p"], "nul_character"),
        (["\ud800"], ["p", 0], "invalid_unicode"),
        ({"\udfff": 1}, ["p"], "invalid_unicode"),
        (nested(65), ["p", *[0] * 64], "json_too_deep"),
        (nested(100_000), ["p", *[0] * 64], "json_too_deep"),
        ("x" * 1001, ["p"], "json_too_large"),
        ({1: "int key"}, ["p"], "json_type"),
        ({"a": object()}, ["p", "a"], "json_type"),
        ({"a": {1, 2}}, ["p", "a"], "json_type"),
    ],
)
def test_refused_values_name_their_place(value: Any, loc: list[Any], kind: str) -> None:
    (problem,) = json_errors(value, ["p"], LIMITS)
    assert problem["loc"] == loc and problem["type"] == kind


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -(2**70), 1.5e308, "", "é€😀", [], {}, nested(64), {"a": [{"b": None}]}],
)
def test_json_values_pass(value: Any) -> None:
    assert json_errors(value, ["p"], LIMITS) == []


def test_lenient_walk_checks_only_depth_numbers_and_unicode() -> None:
    """The look before pydantic: text is checked on the JSON form, after fields are dropped."""
    assert json_errors({"m": object(), "s": "\x00", 1: "x"}, ["p"], LIMITS, strict=False) == []
    assert json_errors({"s": "\ud800"}, ["p"], LIMITS, strict=False)[0]["loc"] == ["p", "s"]
    assert json_errors({"m": math.nan}, ["p"], LIMITS, strict=False)[0]["loc"] == ["p", "m"]
    assert json_errors(nested(65), ["p"], LIMITS, strict=False)[0]["type"] == "json_too_deep"


@pytest.mark.parametrize("name", ["reverse", "a.b:c-d_e", "x" * 100, "0"])
def test_good_names(name: str) -> None:
    assert name_error(name, ["task"]) is None and check_name(name, "task") == name


@pytest.mark.parametrize("name", ["", "x" * 101, "a b", "a\x00", "é", "a/b", "\ud800", "a\n"])
def test_bad_names(name: str) -> None:
    assert name_error(name, ["task"]) is not None
    with pytest.raises(ValueError, match="letters, digits"):
        check_name(name, "task")


def test_run_at_range() -> None:
    for good in (0.0, time.time(), 4_102_444_799.9, datetime(2099, 12, 31, tzinfo=UTC)):
        assert run_at_problem(good) is None
    for bad in (-1.0, 4_102_444_800.0, 1e12, 1e308, math.nan, math.inf, datetime(2100, 1, 1)):
        problem = run_at_problem(bad)
        assert problem is not None and "1970-01-01" in problem and "2099" in problem


def test_job_ids() -> None:
    assert is_job_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    for bad in ("\x00", "a\ud800", "x" * 101, "", "a b", "../etc"):
        assert not is_job_id(bad)


def test_cursors_stay_within_64_bits() -> None:
    assert decode_cursor(encode_cursor(2**63 - 1)) == 2**63 - 1
    for bad in (encode_cursor(2**63), encode_cursor(10**19), "12345678901234567890", "é", "\x00"):
        with pytest.raises(ValueError, match="invalid cursor"):
            decode_cursor(bad)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"priority": True}, "priority"),
        ({"max_attempts": True}, "max_attempts"),
        ({"run_at": True}, "run_at"),
        ({"delay": False}, "delay"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"delay": math.nan}, "delay"),
        ({"run_at": math.nan}, "run_at"),
        ({"run_at": "0000-01-01T00:00:00Z"}, "run_at"),
        ({"run_at": "10000-01-01T00:00:00Z"}, "run_at"),
        ({"priority": "5"}, "priority"),
        ({"delay": "1.5"}, "delay"),
        ({"run_at": "1700000000"}, "run_at"),
        ({"queue": "a\x00"}, "queue"),
        ({"queue": "x" * 101}, "queue"),
    ],
)
def test_bad_options_are_refused_with_their_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidOptions) as caught:  # a JobHandlerError, with the pydantic errors
        job_options(options)
    assert caught.value.errors[0]["loc"][0] == field


class Point(BaseModel):
    x: float


def make_app() -> App:
    app = App()

    @app.task
    async def anything(payload: Any) -> Any:
        return payload

    @app.task
    async def point(payload: Point) -> Point:
        return payload

    return app


def test_payloads_are_checked_before_and_after_pydantic() -> None:
    app = make_app()
    anything, point = app.tasks.get("anything"), app.tasks.get("point")
    # Under Any, pydantic would have stored NaN as null: refused before it gets the chance.
    with pytest.raises(InvalidPayload) as caught:
        anything.dump_payload({"a": math.nan})
    assert caught.value.errors[0]["loc"] == ["payload", "a"]
    # A model holding NaN is refused once it is JSON, with the same error as a plain value.
    with pytest.raises(InvalidPayload) as caught:
        point.dump_payload(Point(x=math.nan))
    assert caught.value.errors[0]["loc"] == ["payload", "x"]
    assert caught.value.errors[0]["type"] == "finite_number"
    assert point.dump_payload(Point(x=1.5)) == {"x": 1.5}


def test_run_at_out_of_range_is_refused_with_its_field() -> None:
    for bad in (1e12, "1969-12-31T00:00:00Z", "2100-01-01T00:00:00Z"):
        with pytest.raises(ValidationError) as caught:
            JobOptions(run_at=bad)
        assert caught.value.errors()[0]["loc"] == ("run_at",)
    task = make_app().tasks.get("anything")
    now = time.time()
    assert task.new_job(None, now, JobOptions(run_at=now + 60)).run_at == now + 60


def test_results_must_be_storable_json() -> None:
    task = make_app().tasks.get("anything")
    assert task.dump_result({"ok": [1, "two"]}) == {"ok": [1, "two"]}
    for bad in (math.nan, {"s": "\x00"}, "\ud800", nested(100)):
        with pytest.raises(InvalidResult, match="not storable JSON"):
            task.dump_result(bad)


def test_task_and_queue_names_are_checked_at_registration() -> None:
    app = App()
    with pytest.raises(ValueError, match="task name"):
        app.task(name="has space")(lambda: None)
    with pytest.raises(ValueError, match="queue name"):
        app.task(name="ok", queue="a/b")(lambda: None)


def test_json_payloads_are_read_as_their_schema_says() -> None:
    """No quoted numbers, no booleans for numbers; an integral float is an integer."""
    app = App()

    @app.task
    async def area(p: Point) -> None:
        return None

    @app.task
    async def count(n: int) -> None:
        return None

    task = app.tasks.get("area")
    assert task.validate_payload({"x": 3.0}) == {"x": 3.0}
    assert app.tasks.get("count").validate_payload(3.0) == 3
    for bad in ({"x": "3"}, {"x": True}, {"x": None}):
        with pytest.raises(InvalidPayload) as caught:
            task.validate_payload(bad)
        assert caught.value.errors[0]["loc"] == ["payload", "x"]
    with pytest.raises(InvalidPayload):
        app.tasks.get("count").validate_payload(3.5)
