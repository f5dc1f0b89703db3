"""The checks every value passes before it is stored: pure, no I/O, the same for both stores.

A value refused here never reaches a store, so SQLite and PostgreSQL give the same answer to the
same request, and nothing that is stored can later break reading it back (``GET /jobs``).
Errors are ``{"loc": [...], "msg": ..., "type": ...}`` dicts, as pydantic's, naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Task and queue names: short, and safe in a URL, a log line, a shell and both stores.
NAME_PATTERN = r"^[A-Za-z0-9_.:-]+$"
NAME_MAX_LENGTH = 100
_NAME = re.compile(f"[A-Za-z0-9_.:-]{{1,{NAME_MAX_LENGTH}}}")

# How far ahead a job may be due (delay) and how long one run may last (timeout).
MAX_AHEAD = 10 * 365 * 86400.0
# When a job may be due (run_at): fixed bounds, so the API description can state them. The
# instant, its offset applied, is from 1970-01-01T00:00:00Z up to, not including,
# 2100-01-01T00:00:00Z (epoch seconds 0 to 4102444800), whether given as a number or as text;
# text must also be written in the years 1970 to 2099, the years its description's pattern
# names (so no text the description refuses is taken: 1969-12-31T23:00:00-05:00 is refused).
RUN_AT_MIN = 0.0
RUN_AT_END = 4_102_444_800.0
RUN_AT_FIRST_YEAR, RUN_AT_LAST_YEAR = 1970, 2099
RUN_AT_RANGE = (
    "from 1970-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z once its offset is"
    " applied (epoch seconds 0 to 4102444800); text is written in the years 1970 to 2099"
)
# Job ids are made by ``new_job_id`` (UUIDs); anything longer is not one of ours.
JOB_ID_MAX_LENGTH = 100
# A free-text filter (``?queue=``, ``?task=``) may name older rows, so only its text is checked.
FILTER_MAX_LENGTH = 200
# A unique key (``unique_key``) or an Idempotency-Key: any text of up to this many characters.
UNIQUE_KEY_MAX_LENGTH = 255

FieldError = dict[str, Any]


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How deep a JSON value may nest and how many bytes its compact form may take."""

    max_depth: int = 64
    max_bytes: int = 1024 * 1024


def error(loc: Sequence[str | int], msg: str, kind: str) -> FieldError:
    return {"loc": list(loc), "msg": msg, "type": kind}


# What pydantic puts before the message of an error our own validators raise.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_errors(
    errors: Iterable[Mapping[str, Any]], place: Callable[[Sequence[Any]], list[Any]] = list
) -> list[FieldError]:
    """pydantic's errors (``exc.errors()``) as ours, the one way everywhere: loc (``place``
    may move it), msg without pydantic's prefixes, type; an unknown field is "unknown field"."""
    found = []
    for e in errors:
        msg = str(e["msg"])
        for prefix in _PYDANTIC_PREFIXES:
            msg = msg.removeprefix(prefix)
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        found.append({"loc": place(e["loc"]), "msg": msg, "type": e["type"]})
    return found


def text_error(text: str, loc: Sequence[str | int], nul: bool = True) -> FieldError | None:
    """NUL (PostgreSQL cannot store it) and lone surrogates (not Unicode) are refused."""
    if nul and "\x00" in text:
        return error(loc, "text may not contain the NUL character (\\u0000)", "nul_character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return error(loc, "text is not valid Unicode (a lone surrogate)", "invalid_unicode")
    return None


def json_errors(
    value: Any, loc: Sequence[str | int], limits: JsonLimits, *, strict: bool = True
) -> list[FieldError]:
    """The first problem of a JSON value, or none: finite numbers, valid text, bounded depth.

    Without ``strict``, only depth, finite numbers and Unicode are checked, and other objects (a
    pydantic model given to ``enqueue``) are passed over: that is the look before pydantic reads
    a value (it would turn NaN under ``Any`` into null, and cannot read a lone surrogate); all of
    it is checked again on the JSON form, the one that is stored (so NUL in a field the payload
    type drops does not count). The walk uses its own stack: no RecursionError, however deep.
    """
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, tuple(loc), 0)]
    while stack:
        item, where, depth = stack.pop()
        problem = _item_error(item, where, depth, limits, strict)
        if problem is not None:
            return [problem]
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append(
                    (child, (*where, key) if isinstance(key, str | int) else where, depth + 1)
                )
        elif isinstance(item, list | tuple):
            stack.extend((child, (*where, i), depth + 1) for i, child in enumerate(item))
    if strict:
        return size_errors(value, loc, limits)
    return []


def _item_error(
    item: Any, where: tuple[str | int, ...], depth: int, limits: JsonLimits, strict: bool
) -> FieldError | None:
    if item is None or isinstance(item, bool | int):
        return None
    if isinstance(item, float):
        if math.isfinite(item):
            return None
        return error(where, "NaN and Infinity are not JSON numbers", "finite_number")
    if isinstance(item, str):
        return text_error(item, where, nul=strict)
    if isinstance(item, dict | list | tuple):
        if depth >= limits.max_depth:
            message = f"nests deeper than {limits.max_depth} levels"
            return error(where, message, "json_too_deep")
        if isinstance(item, dict):
            return _keys_error(item, where, strict)
        return None
    if strict:
        return error(where, f"a {type(item).__name__} is not a JSON value", "json_type")
    return None


def _keys_error(
    item: dict[Any, Any], where: tuple[str | int, ...], strict: bool
) -> FieldError | None:
    for key in item:
        if not isinstance(key, str):
            if strict:
                return error(where, "object keys must be strings", "json_type")
        elif (problem := text_error(key, where, nul=strict)) is not None:
            return problem
    return None


def size_errors(value: Any, loc: Sequence[str | int], limits: JsonLimits) -> list[FieldError]:
    """The size of the compact JSON, as the stores keep it."""
    try:
        size = len(compact_json(value).encode("utf-8"))
    except (ValueError, TypeError) as exc:  # an integer too long to print, for one
        return [error(loc, f"not a JSON value: {exc}", "json_type")]
    if size > limits.max_bytes:
        message = f"takes {size} bytes as JSON, over the limit of {limits.max_bytes}"
        return [error(loc, message, "json_too_large")]
    return []


# One encoder, made once: json.dumps with these options would build a new one on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compact_json(value: Any) -> str:
    return _COMPACT.encode(value)


def concurrency_key_error(value: Any, loc: Sequence[str | int]) -> FieldError | None:
    """A concurrency key given outside a job's options (a token's): the job option's own rule,
    text of 1 to ``UNIQUE_KEY_MAX_LENGTH`` characters with no NUL, valid Unicode."""
    if not isinstance(value, str):
        return error(loc, "a concurrency key is text", "string_type")
    if not 1 <= len(value) <= UNIQUE_KEY_MAX_LENGTH:
        message = f"a concurrency key is 1 to {UNIQUE_KEY_MAX_LENGTH} characters"
        return error(loc, message, "string_length")
    return text_error(value, loc)


def name_error(name: str, loc: Sequence[str | int]) -> FieldError | None:
    """A task or queue name: 1 to 100 letters, digits and ``_.:-``."""
    if _NAME.fullmatch(name):
        return None
    message = f"a name is 1 to {NAME_MAX_LENGTH} characters of letters, digits and _.:-"
    return error(loc, message, "invalid_name")


def check_name(name: str, what: str) -> str:
    """Raise ValueError for a bad task or queue name (at registration)."""
    if name_error(name, [what]) is not None:
        raise ValueError(
            f"{what} name {name!r} is not 1 to {NAME_MAX_LENGTH} letters, digits and _.:-"
        )
    return name


def run_at_problem(when: float | datetime) -> str | None:
    """Why ``run_at`` is out of range (see RUN_AT_RANGE), or None.

    A time's bounds are those of its instant, its offset applied first:
    ``2099-12-31T23:59:59-23:59`` is 2100-01-01T23:58:59Z, past the end, and
    ``1970-01-01T00:00:00+14:00`` is before the epoch. (A time without a zone is refused
    before this by its callers, who say why; here it counts as UTC.)
    """
    if isinstance(when, datetime):
        written = RUN_AT_FIRST_YEAR <= when.year <= RUN_AT_LAST_YEAR
        instant = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        ok = written and RUN_AT_MIN <= instant.timestamp() < RUN_AT_END
    else:
        ok = math.isfinite(when) and RUN_AT_MIN <= when < RUN_AT_END
    return None if ok else f"must be {RUN_AT_RANGE}"


def filter_error(value: str, loc: Sequence[str | int]) -> FieldError | None:
    """A list filter: any text a store can compare, of a bounded length."""
    if len(value) > FILTER_MAX_LENGTH:
        return error(loc, f"at most {FILTER_MAX_LENGTH} characters", "string_too_long")
    return text_error(value, loc)


_ID_PREFIX = re.compile(r"[0-9a-f-]{1,36}")


def id_prefix_error(value: str, loc: Sequence[str | int]) -> FieldError | None:
    """The start of a job id to search by: lowercase hex digits and dashes, as ids are written."""
    if _ID_PREFIX.fullmatch(value) is None:
        return error(loc, "the start of a job id: 1 to 36 of 0-9, a-f and -", "id_prefix")
    return None


def is_job_id(value: str) -> bool:
    """Whether ``value`` can be the id of a job at all (so the store need not be asked)."""
    return len(value) <= JOB_ID_MAX_LENGTH and _NAME.fullmatch(value) is not None


# -- the fast path -----------------------------------------------------------------------------
#
# Most payloads are small and plain: an int, a short string, a flat dict of those. For them one
# walk proves every rule above at once, and bounds the size from above without encoding (the
# store encodes once, when it writes). A value the walk is unsure of is not refused here: the
# full checks above decide it, and give the error. So the fast path can only say yes.

# The most bytes a float takes as JSON (``-2.2250738585072014e-308``).
_FLOAT_BYTES = 24
# Beyond this many bits an int may be too long to print (sys.get_int_max_str_digits).
_INT_MAX_BITS = 4000 * 3


def _text_bound(text: str) -> int | None:
    """At most how many bytes ``text`` takes as a JSON string; None if it breaks a rule."""
    if "\x00" in text:
        return None
    if text.isascii():
        # Printable ASCII escapes only " and \ (two bytes); a control character takes six.
        return 2 * len(text) + 2 if text.isprintable() else 6 * len(text) + 2
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return 6 * len(text) + 2  # four bytes at most per character, six for an escape


def _scalar_bound(item: Any) -> int | None:
    kind = type(item)
    if kind is str:
        return _text_bound(item)
    if kind is int:
        bits = item.bit_length()
        return None if bits > _INT_MAX_BITS else bits * 31 // 100 + 2  # digits and a sign
    if kind is float:
        return _FLOAT_BYTES if math.isfinite(item) else None
    if item is None or kind is bool:
        return 5
    return None


def plain_json(value: Any, limits: JsonLimits) -> bool:
    """Whether ``value`` is plain JSON (dicts with text keys, lists, text, ints, finite floats,
    booleans, None) that passes every check of ``json_errors``; False when unsure."""
    bound = _scalar_bound(value)
    if bound is None:
        bound = _container_bound(value, limits)
        if bound is None:
            return False
    if bound <= limits.max_bytes:
        return True
    return len(compact_json(value).encode("utf-8")) <= limits.max_bytes


def _container_bound(value: Any, limits: JsonLimits) -> int | None:
    """The walk of ``plain_json`` over dicts and lists, with its own stack (any depth)."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            if depth >= limits.max_depth:
                return None
            total += 2 * len(item) + 1  # braces, colons and commas
            for key, child in item.items():
                if type(key) is not str or (size := _text_bound(key)) is None:
                    return None
                total += size
                if (size := _scalar_bound(child)) is None:
                    stack.append((child, depth + 1))
                else:
                    total += size
        elif kind is list:
            if depth >= limits.max_depth:
                return None
            total += len(item) + 2
            for child in item:
                if (size := _scalar_bound(child)) is None:
                    stack.append((child, depth + 1))
                else:
                    total += size
        else:
            return None
    return total
