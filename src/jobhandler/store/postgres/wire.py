"""The PostgreSQL store's wire (postgres.py uses it): a unit's statements sent on cursors and
their results read, a big submit by COPY, and a pool checkout check that costs no round trip
for a healthy connection."""

from __future__ import annotations

import contextlib
import operator
import select
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jobhandler.model.errors import StoreUnavailable
from jobhandler.store.dialect import Done, Duplicate, Params, Refused, Step
from jobhandler.store.queries import Query
from jobhandler.store.rows import NEW_COLUMNS, dumps

Conn = psycopg.AsyncConnection[DictRow]

# From this many jobs a submit goes by COPY: below it, one ``insert_jobs`` round trip (arrays
# of every column, built and parsed per value) costs less than COPY's transaction of four.
COPY_FROM = 64

_new_values = operator.itemgetter(*NEW_COLUMNS)
_PAYLOAD = NEW_COLUMNS.index("payload")


@contextlib.contextmanager
def unavailable() -> Iterator[None]:
    """No connection to be had (the database is away, or every one stayed busy too long), or
    the one in use was lost: StoreUnavailable, which callers answer with 503 or a retry."""
    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(f"postgresql: {exc}") from exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Driver errors as the core's (see dialect.py): unavailable, duplicate, refused."""
    with unavailable():
        try:
            yield
        except psycopg.errors.UniqueViolation as exc:
            raise Duplicate(f"postgresql: {exc}") from exc
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise Refused(f"postgresql: {exc}") from exc


def copied(steps: Sequence[Step]) -> bool:
    """Whether this unit is a big submit that COPY may write: the insert alone (no idempotency
    record, no unique window), and no unique key, the one thing COPY cannot skip on conflict."""
    if len(steps) != 1 or steps[0].query.name != "insert_jobs":
        return False
    rows: Sequence[Params] = steps[0].params  # type: ignore[assignment]
    return len(rows) >= COPY_FROM and all(row["unique_key"] is None for row in rows)


async def copy_jobs(conn: Conn, rows: Sequence[Params], queries: Mapping[str, Query]) -> Done:
    """``insert_jobs`` by COPY, with its NOTIFY, in one transaction: the same rows, in the same
    order (``seq`` follows it), refused by the same constraints."""
    try:
        async with conn.transaction():
            async with conn.cursor().copy(queries["copy_jobs"].text) as copy:
                for row in rows:
                    await copy.write_row(_new_row(row))
            await conn.execute(queries["notify_submit"].text)
    except UnicodeEncodeError as exc:  # text no database can hold (a lone surrogate)
        raise Refused(f"postgresql: {exc}") from exc
    return Done([], [len(rows)])


def _new_row(params: Params) -> list[Any]:
    """A submit's row for COPY: its payload as compact JSON text, which the column reads."""
    row = list(_new_values(params))
    payload = row[_PAYLOAD]
    row[_PAYLOAD] = dumps(payload.obj if isinstance(payload, Json) else payload)
    return row


async def check_idle(conn: Conn) -> None:
    """The pool's check on checkout, free for a connection that is fine: an idle pooled
    connection (no LISTEN) receives nothing, so one the server ended (a restart, a terminated
    backend, an idle timeout) has its farewell or end of file waiting to be read. Only then is
    the round trip of the pool's own check paid, which raises and makes the pool take another.
    """
    if input_waiting(conn):
        await AsyncConnectionPool.check_connection(conn)


def input_waiting(conn: psycopg.BaseConnection[Any]) -> bool:
    """Whether an idle connection has something to read (check_idle); raises if it is closed.

    poll(), not select(): select() refuses a descriptor past 1,023, and a server holding many
    client connections has its new database connections there. With select() every checkout
    failed its check, and every request waited out the pool's timeout for a 503.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


Sent = list[tuple[Step, "psycopg.AsyncCursor[DictRow]"]]


async def send(conn: Conn, steps: Sequence[Step]) -> Sent:
    """Send every statement, each on its own cursor (in a pipeline, results come later)."""
    sent: Sent = []
    for step in steps:
        cur = conn.cursor(row_factory=dict_row)  # a caller's connection may read tuples
        text, params = step.query.text, step.params
        if step.many and step.query.columnar:
            await cur.execute(text, columns(params))  # type: ignore[arg-type]
        elif step.many:
            await cur.executemany(text, params, returning=step.each)
        else:
            await cur.execute(text, params)
        sent.append((step, cur))
    return sent


async def read(sent: Sent) -> list[Done]:
    """Each statement's rows and row counts (one count per run of an ``each`` batch)."""
    done = []
    for step, cur in sent:
        if step.many and step.each:
            counts = [cur.rowcount]
            while cur.nextset():
                counts.append(cur.rowcount)
            done.append(Done([], counts))
        else:
            found = await cur.fetchall() if cur.description is not None else []
            done.append(Done(found, [cur.rowcount]))
    return done


def run_blocking(conn: psycopg.Connection[Any], steps: Sequence[Step]) -> list[Done]:
    """``send`` and ``read`` on a caller's blocking connection, inside its transaction."""
    done = []
    for step in steps:
        cur = conn.cursor(row_factory=dict_row)  # rows by name, whatever the caller's factory
        text, params = step.query.text, step.params
        if step.many and step.query.columnar:
            cur.execute(text, columns(params))  # type: ignore[arg-type]
        elif step.many:
            cur.executemany(text, params, returning=step.each)
        else:
            cur.execute(text, params)
        if step.many and step.each:
            counts = [cur.rowcount]
            while cur.nextset():
                counts.append(cur.rowcount)
            done.append(Done([], counts))
        else:
            done.append(Done(cur.fetchall() if cur.description else [], [cur.rowcount]))
    return done


def columns(rows: Sequence[Params]) -> dict[str, str]:
    """A batch of rows as one array literal per column, for the query to cast and ``unnest``.

    Written here rather than by psycopg's list dumper, which spends about a microsecond of
    Python on each value (a batch of 100 outcomes, 13 columns: 1.3-1.5 ms of client CPU,
    against 0.5 ms this way, round trip included). A column of lists goes as each list's
    array text, for the query to cast: an array of arrays must be rectangular, and unnest
    would flatten it."""
    return {key: _array_text([row[key] for row in rows]) for key in rows[0]}


def _array_text(values: list[Any]) -> str:
    """``['a', None, 'b"']`` as ``{"a",NULL,"b\\""}``: an array as PostgreSQL reads it."""
    return "{" + ",".join([_element(v) for v in values]) + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bool):  # before int: a bool is an int
        return "t" if value else "f"
    if isinstance(value, int):
        return str(int(value))  # int(): an IntEnum's own str is its name
    if isinstance(value, float):
        return repr(float(value))  # a float's repr reads back as the same float8
    if isinstance(value, Json):
        return _quoted(dumps(value.obj))
    if isinstance(value, list):
        return _quoted(_array_text(value))
    raise TypeError(f"no array element for {type(value).__name__}")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A relaxed unit's commit returns before its WAL reaches the disk (queries.Query.relaxed): a
# crash of the server or its host within a few WAL writer cycles may undo it, which
# at-least-once already allows.
RELAXED = "SET LOCAL synchronous_commit = off"


async def transaction(conn: Conn, steps: Sequence[Step], relaxed: bool) -> list[Done]:
    """The unit as one transaction in one pipeline: one round trip.

    BEGIN and COMMIT go as statements of the pipeline: psycopg's ``transaction()`` would wait
    for the server twice more (~0.3 ms a unit here). After a failed statement, psycopg counts
    as prepared the statements the server then skipped; ``rollback()`` ends the transaction
    and forgets them (the pipeline's implicit transaction, with no BEGIN, would leave nothing
    to roll back, and their next use would fail).
    """
    try:
        async with conn.pipeline():
            await conn.cursor().execute("BEGIN")
            if relaxed:
                await conn.cursor().execute(RELAXED)
            sent = await send(conn, steps)
            await conn.cursor().execute("COMMIT")
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # a lost connection: the pool drops it
            await conn.rollback()
        raise
    return await read(sent)
