"""Typed tasks: the payload type comes from the first parameter and is checked at submit."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from jobhandler import App, InvalidPayload, JobContext, UnknownTask


class Email(BaseModel):
    to: str
    retries: int = 0


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


def make_app() -> App:
    app = App()

    @app.task(queue="mail", max_attempts=5, timeout=2, priority=3)
    async def send(email: Email, ctx: JobContext) -> dict[str, str]:
        return {"sent": email.to}

    @app.task
    def area(p: Point) -> int:
        return p.x * p.y

    @app.task
    def rate(m: Movie) -> str:
        return m["title"]

    @app.task
    def words(text: list[str]) -> int:
        return len(text)

    @app.task
    def nothing() -> None:
        return None

    return app


def test_options_and_isolation() -> None:
    app = make_app()
    send = app.tasks.get("send")
    assert send.options.queue == "mail" and send.options.max_attempts == 5
    assert send.options.timeout == 2 and send.options.priority == 3
    assert send.isolation == "async"
    assert app.tasks.get("area").isolation == "thread"
    assert app.tasks.queues() == ["default", "mail"]


@pytest.mark.parametrize(
    ("task", "raw", "stored"),
    [
        ("send", {"to": "a@b"}, {"to": "a@b", "retries": 0}),
        ("area", {"x": 2, "y": 3.0}, {"x": 2, "y": 3}),
        ("rate", {"title": "Up", "year": 2009}, {"title": "Up", "year": 2009}),
        ("words", ["a", "b"], ["a", "b"]),
        ("nothing", None, None),
    ],
)
def test_valid_payloads_are_normalised_to_json(task: str, raw: Any, stored: Any) -> None:
    assert make_app().tasks.get(task).validate_payload(raw) == stored


@pytest.mark.parametrize(
    ("task", "raw", "loc"),
    [
        ("send", {"retries": 1}, ["payload", "to"]),
        ("area", {"x": 1, "y": "many"}, ["payload", "y"]),
        ("rate", {"title": "Up"}, ["payload", "year"]),
        ("words", "not a list", ["payload"]),
    ],
)
def test_invalid_payloads_name_the_field(task: str, raw: Any, loc: list[str]) -> None:
    with pytest.raises(InvalidPayload) as caught:
        make_app().tasks.get(task).validate_payload(raw)
    assert caught.value.errors[0]["loc"] == loc
    assert ".".join(loc) in str(caught.value)


def test_schemas_are_published() -> None:
    send = make_app().tasks.get("send")
    schema = send.payload_schema()
    assert schema["required"] == ["to"] and "retries" in schema["properties"]
    assert send.result_schema()["type"] == "object"


def test_the_context_is_not_the_payload() -> None:
    send = make_app().tasks.get("send")
    assert send.signature.context_param == "ctx"
    ctx = JobContext("id", "send", 1, lambda *_: None)
    args, kwargs = send.call_args(Email(to="x"), ctx)
    assert args == [Email(to="x")] and kwargs == {"ctx": ctx}


def test_registry_rejects_unknown_and_duplicate_names() -> None:
    app = make_app()
    with pytest.raises(UnknownTask):
        app.tasks.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        app.task(name="area")(lambda p: p)


def test_two_payload_parameters_are_refused() -> None:
    app = App()
    with pytest.raises(TypeError, match="one payload parameter"):

        @app.task
        def bad(a: int, b: int) -> int:
            return a + b
