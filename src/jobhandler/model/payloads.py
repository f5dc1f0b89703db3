"""What a task function asks for, and reading payloads by its type's JSON Schema rules. No I/O."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from jobhandler.model.context import JobContext
from jobhandler.model.errors import InvalidPayload
from jobhandler.model.validation import JsonLimits, compact_json, field_errors, json_errors


@dataclass(frozen=True, slots=True)
class Signature:
    """What a task function asks for, read once from its annotations."""

    payload_type: Any  # None when the task takes no payload
    result_type: Any
    context_param: str | None
    is_async: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Signature:
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters.values())
        context_param = next((p.name for p in params if hints.get(p.name) is JobContext), None)
        payload_params = [p for p in params if p.name != context_param]
        if len(payload_params) > 1:
            raise TypeError(
                f"task {fn.__qualname__} takes one payload parameter (and optionally a "
                f"JobContext), not {[p.name for p in payload_params]}"
            )
        payload_type: Any = None
        if payload_params:
            payload_type = hints.get(payload_params[0].name, Any)
        return cls(
            payload_type=payload_type,
            result_type=hints.get("return", Any),
            context_param=context_param,
            is_async=inspect.iscoroutinefunction(fn),
        )


def _exact(kind: type) -> Callable[[Any], bool]:
    return lambda value: type(value) is kind


# Payload types pydantic reads and dumps a plain JSON value of unchanged: for these, a value of
# the right shape that passes ``validation.plain_json`` is its own checked JSON form.
_SHAPES: dict[Any, Callable[[Any], bool]] = {
    None: lambda value: value is None,
    Any: lambda value: True,
    **{kind: _exact(kind) for kind in (int, str, float, bool, dict, list)},
    dict[str, Any]: _exact(dict),
    list[Any]: _exact(list),
}


def plain_shape(payload_type: Any) -> Callable[[Any], bool] | None:
    """For a payload type whose plain JSON values need no reading, the test of a value's shape
    (``int``: an int and not a bool); None for any other type (pydantic reads every value)."""
    try:
        return _SHAPES.get(payload_type)
    except TypeError:  # an unhashable annotation
        return None


def read_payload(
    adapter: pydantic.TypeAdapter[Any], value: Any, task: str, prefix: Sequence[str] = ()
) -> Any:
    """A submitted payload (or list of them) as the function's type, by its JSON Schema's rules.

    A JSON value is read as JSON, strictly: ``true`` is no number and ``"5"`` no integer, as
    the published schema says. Only an integral float for an integer (``3.0``), which JSON
    Schema counts as an integer, is let through. Anything else (a model instance from Python
    code) is read by pydantic's usual rules.
    """
    try:
        try:
            text = compact_json(value)
        except (TypeError, ValueError):
            return adapter.validate_python(value)
        try:
            return adapter.validate_json(text, strict=True)
        except pydantic.ValidationError as exc:
            if not all(_integral_float(e) for e in exc.errors(include_url=False)):
                raise
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        raise InvalidPayload(task, payload_errors(exc, prefix)) from None


def _integral_float(error: Any) -> bool:
    """An error only because an integer came written as a float, such as 3.0."""
    given = error.get("input")
    return error["type"] == "int_type" and isinstance(given, float) and given.is_integer()


def each_json_errors(payloads: list[Any], limits: JsonLimits, strict: bool) -> list[Any]:
    for index, payload in enumerate(payloads):
        if errors := json_errors(payload, ["jobs", index, "payload"], limits, strict=strict):
            return errors
    return []


def payload_errors(
    exc: pydantic.ValidationError, prefix: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Errors with their place: ``payload`` and the field path (for a batch: jobs, index)."""

    def place(loc: Sequence[Any]) -> list[Any]:
        if prefix:  # a list of payloads: loc starts with the index
            return [*prefix, loc[0], "payload", *loc[1:]]
        return ["payload", *loc]

    return field_errors(exc.errors(), place)
