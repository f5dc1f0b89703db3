"""The dialect interface: what a store dialect (sqlite/, postgres/) provides to the core.

A dialect is an object of its own class that the core (core.py) holds; neither derives from
the other. It supplies connections, its named queries (``sql/<dialect>/*.sql``), how values
become parameters (JSON, arrays, native SQL), and runs a unit of work: a list of :class:`Step`
(named statements with their parameters) in one transaction, returning a :class:`Done` for
each (one thread hop on SQLite, one pooled connection on PostgreSQL). It also owns what is
truly its own: the schema's migration, wake-ups across processes, and the clock leases are
judged by. River's driver interface and procrastinate's connector are the models.

Errors. A dialect raises ``StoreUnavailable`` only for a lost or refused connection or a locked
database; an integrity or data error becomes :class:`Duplicate` or :class:`Refused` (domain
errors), which an operation turns into what it means (a duplicate job id, a token name taken).
Anything else (bad SQL, a missing table) is a bug and surfaces as the driver raised it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from jobhandler.model.errors import JobHandlerError
from jobhandler.store.queries import Query
from jobhandler.store.rows import PageBudget

Params = Mapping[str, Any]


class Duplicate(JobHandlerError):
    """A write would have broken a uniqueness rule (an id or name taken); nothing was written."""


class Refused(JobHandlerError):
    """The database refused a value (a CHECK, a type or range); nothing was written."""


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a unit of work. ``many``: ``params`` is a sequence and the statement runs
    once for each (``each``: with a row count for each, else one count for all)."""

    query: Query
    params: Params | Sequence[Params]
    many: bool = False
    each: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    rows: list[Any]
    counts: list[int]


class Dialect(Protocol):
    """What the core asks of a dialect (``sqlite.dialect.SQLiteDialect``,
    ``postgres.dialect.PostgresDialect``)."""

    @property
    def name(self) -> str:
        """Its folder under ``sql/``, for its queries and migrations."""

    @property
    def queries(self) -> Mapping[str, Query]:
        """Its named queries; an optional one (``count_inserted``, ``notify_*``) may be absent."""

    @property
    def byte_length(self) -> str:
        """SQL that measures a column's text in bytes, ``{}`` standing for the column."""

    # -- values as parameters --------------------------------------------------------------

    def json(self, value: Any, /) -> Any:
        """A JSON value as a parameter."""

    def array(self, values: list[Any], /) -> Any:
        """A list as one parameter (a query matches against its members)."""

    def loads(self, value: Any, /) -> Any:
        """A JSON column's value as read."""

    def native(self, sql: str, /) -> str:
        """Ad hoc SQL with ``:name`` parameters in the driver's style."""

    # -- units of work ---------------------------------------------------------------------

    def accept(self, connection: object | None) -> None:
        """Raise TypeError unless this dialect can write inside ``connection``'s transaction
        (None: its own)."""

    async def run(
        self, steps: Sequence[Step], write: bool, connection: object | None = None
    ) -> list[Done]:
        """Run the statements in order in one transaction (the caller's, if given)."""

    def run_sync(self, steps: Sequence[Step], connection: object) -> list[Done]:
        """``run`` on a caller's blocking connection (``accept`` it first), in this thread."""

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A connection to this database apart from the store's own (kept for tasks, see
        each dialect's tasktx.py), in a transaction: committed when the block ends, rolled
        back if it raises (a task's ``ctx.transaction()``)."""

    def transaction_sync(self) -> AbstractContextManager[Any]:
        """``transaction`` for a thread: a blocking connection, used from this thread."""

    async def page_rows(self, sizes: str, params: Params, budget: PageBudget) -> list[Any]:
        """Feed the candidates of ``sizes`` to ``budget`` until it is full, lazily; then the
        whole rows of the seqs it took, in the same snapshot."""

    def skew(self) -> float:
        """Seconds to add to this host's clock to read the store's (the database's clock on
        PostgreSQL, as last measured, 0 before; 0 on SQLite)."""

    # -- its own ---------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to run from several processes at once."""

    async def close(self) -> None:
        """Let go of connections, threads and listeners."""

    async def listen(
        self, on_submit: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> Callable[[], Awaitable[None]]:
        """Wake-ups from other processes, as ``Store.listen`` describes them."""
