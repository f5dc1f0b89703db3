"""The submit form of a task, generated from its payload's JSON Schema, and read back.

A scalar payload (text, a number, a boolean) is one input; an object with properties is one
input per property; anything else (lists, nested objects, unions) is JSON typed into a text
area. What the form sends is turned back into the payload the schema describes and then checked
by the task itself, exactly as an API submit is: the form never decides what is valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from jobhandler.model.errors import JobHandlerError

PAYLOAD = "payload"  # the input of a scalar payload; a property's input is "payload.<name>"
KINDS = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}


class BadForm(JobHandlerError):
    """A form's body could not be read (too big, not urlencoded) or a field is not valid."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the input's name
    label: str
    kind: str  # text | integer | number | boolean | json | choice
    required: bool
    description: str = ""
    choices: tuple[str, ...] = ()
    value: str = ""


@dataclass(slots=True)
class SubmitForm:
    fields: list[Field]
    errors: list[str] = field(default_factory=list)


def _kind(schema: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return "choice", tuple(schema["enum"])
    kind = KINDS.get(schema.get("type", ""), "json") if isinstance(schema, dict) else "json"
    return kind, ()


def form_fields(schema: dict[str, Any], sent: dict[str, str] | None = None) -> list[Field]:
    """The inputs for a payload of this schema, filled with what was ``sent`` (on an error)."""
    sent = sent or {}
    properties = schema.get("properties")
    if schema.get("type") == "object" and isinstance(properties, dict) and properties:
        required = set(schema.get("required", ()))
        fields = []
        for prop, sub in properties.items():
            kind, choices = _kind(sub)
            name = f"{PAYLOAD}.{prop}"
            fields.append(
                Field(
                    name=name,
                    label=str(sub.get("title", prop)),
                    kind=kind,
                    required=prop in required,
                    description=str(sub.get("description", "")),
                    choices=choices,
                    value=sent.get(name, _default(sub)),
                )
            )
        return fields
    kind, choices = _kind(schema)
    return [
        Field(
            PAYLOAD,
            "payload",
            kind,
            kind != "boolean",
            str(schema.get("description", "")),
            choices,
            sent.get(PAYLOAD, ""),
        )
    ]


def _default(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return ""
    value = schema["default"]
    return value if isinstance(value, str) else json.dumps(value)


def _value(f: Field, raw: str | None) -> tuple[bool, Any]:
    """Whether the field gives a value, and which (BadForm for JSON that is not JSON)."""
    if f.kind == "boolean":
        return True, raw is not None
    if raw is None or (raw == "" and not f.required) or (raw == "" and f.kind != "text"):
        return False, None
    if f.kind in ("integer", "number"):
        try:  # a number the task's own check then judges; text it could not be stays text
            return True, int(raw) if f.kind == "integer" else float(raw)
        except ValueError:
            return True, raw
    if f.kind == "json":
        try:
            return True, json.loads(raw)
        except ValueError as exc:
            raise BadForm(f"{f.label}: not valid JSON ({exc})") from None
    return True, raw


def payload_from(fields: list[Field], sent: dict[str, str]) -> Any:
    """The payload the form describes; the task checks it like any other submit."""
    if len(fields) == 1 and fields[0].name == PAYLOAD:
        given, value = _value(fields[0], sent.get(PAYLOAD))
        return value if given else None
    payload = {}
    for f in fields:
        given, value = _value(f, sent.get(f.name))
        if given:
            payload[f.name.removeprefix(f"{PAYLOAD}.")] = value
    return payload


async def read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """An urlencoded form body, refused while it streams in once it is over ``max_bytes``."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise BadForm("a dashboard form is sent as application/x-www-form-urlencoded", 415)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BadForm(f"the form is over {max_bytes} bytes", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadForm("the form is not UTF-8", 400) from None
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=1000))
