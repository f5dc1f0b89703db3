"""How the SQLite dialect runs a unit of work's statements on a ``sqlite3`` connection: named
parameters bound by position, list parameters expanded, and driver errors as the core's."""

from __future__ import annotations

import functools
import operator
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from jobhandler.model.errors import DiskFull, StoreUnavailable
from jobhandler.store.dialect import Done, Duplicate, Params, Refused, Step

# The primary result codes that mean the database cannot be used now (locked past the busy
# timeout, the file cannot be opened or read, the disk is full), not that a statement is wrong.
_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_READONLY,
}


def _translated(exc: sqlite3.Error) -> BaseException:
    """A driver error as the core's (see dialect.py): what ``translating`` raises instead."""
    if isinstance(exc, sqlite3.IntegrityError):
        if str(exc).startswith("UNIQUE constraint failed"):
            return Duplicate(f"sqlite: {exc}")
        return Refused(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.DataError):
        return Refused(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode & 0xFF in _UNAVAILABLE:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL:
            return DiskFull(f"sqlite: {exc}")  # the dialect frees its reserve (space.py)
        return StoreUnavailable(f"sqlite: {exc}")
    return exc  # "no such table", a syntax error...: a bug, not an outage


@contextmanager
def translating() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
Values = Callable[[Params], tuple[Any, ...]]


@functools.cache
def positional(text: str) -> tuple[str, Values]:
    """``:name`` parameters as ``?``, and the function that takes their values in that order:
    sqlite3 binds a tuple faster than it looks each name up, on every statement of a batch."""
    names = _NAMED.findall(text)
    if len(names) == 1:
        (name,) = names
        return _NAMED.sub("?", text), lambda params: (params[name],)
    getter = operator.itemgetter(*names) if names else lambda params: ()
    return _NAMED.sub("?", text), getter


@functools.cache
def _expanded(text: str, name: str, count: int) -> str:
    """``IN (:name)`` as ``IN (:name_0, :name_1, ...)``, for a list of ``count`` values."""
    marks = ", ".join(f":{name}_{i}" for i in range(count))
    return re.sub(rf":{name}\b", marks, text)


def bound(text: str, params: Params) -> tuple[str, tuple[Any, ...]]:
    """The statement and its values. A list parameter (a claim's queues) becomes one parameter
    per value: SQLite plans with those where it would not look inside JSON (other lists are
    JSON text already)."""
    lists = [name for name, value in params.items() if type(value) is list]
    if lists:
        params = dict(params)
        for name in lists:
            values = params.pop(name)
            text = _expanded(text, name, len(values))
            params.update({f"{name}_{i}": v for i, v in enumerate(values)})
    positional_text, values_of = positional(text)
    return positional_text, values_of(params)


def run_steps(conn: sqlite3.Connection, steps: Sequence[Step]) -> list[Done]:
    """The statements in order, on a connection whose transaction the caller holds."""
    return [_step(conn, step) for step in steps]


def _step(conn: sqlite3.Connection, step: Step) -> Done:
    if not step.many:
        cur = conn.execute(*bound(step.query.text, step.params))  # type: ignore[arg-type]
        found = cur.fetchall()  # before rowcount: RETURNING counts the rows as they are read
        return Done(found, [cur.rowcount])
    text, values_of = positional(step.query.text)
    batch = map(values_of, step.params)  # type: ignore[arg-type]
    if step.each:
        return Done([], [conn.execute(text, values).rowcount for values in batch])
    return Done([], [conn.executemany(text, batch).rowcount])
