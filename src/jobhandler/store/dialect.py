"""The dialect interface: what a store dialect (sqlite.py, postgres.py) provides to the core.

A dialect supplies connections, its named queries (``sql/<dialect>/*.sql``), how values
become parameters (JSON, arrays), and runs a unit of work: a list of :class:`Step` (named
statements with their parameters) in one transaction, returning a :class:`Done` for each (one
thread hop on SQLite, one pooled connection on PostgreSQL). River's driver interface and
procrastinate's connector are the models.

Errors. A dialect raises ``StoreUnavailable`` only for a lost or refused connection or a locked
database; an integrity or data error becomes :class:`Duplicate` or :class:`Refused` (domain
errors), which an operation turns into what it means (a duplicate job id, a token name taken).
Anything else (bad SQL, a missing table) is a bug and surfaces as the driver raised it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.jobs import TERMINAL, TRANSITIONS, Job, Transition
from jobhandler.store import rows as r
from jobhandler.store.queries import Query

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


class Dialect:
    """The base of a dialect: what it declares and provides, and the plumbing the core's
    operations use. ``core.StoreCore`` adds the operations."""

    dialect: str
    queries: dict[str, Query]
    _sized: str  # a page's candidates: seq and size (rows.sized_columns)
    # Each transition's part of the guarded UPDATE, from the state machine: its target, the
    # statuses it may leave (as the dialect binds a list), whether it ends the job.
    _edges: dict[Transition, tuple[str, Any, bool]]

    def __init_subclass__(
        cls,
        *,
        dialect: str | None = None,
        queries: dict[str, Query] | None = None,
        byte_length: str = "",
        **kwargs: Any,
    ) -> None:
        """A dialect declares itself in its class line: its name (its folder under ``sql/``),
        its named queries, and how it measures a column's text in bytes (``{}`` the column).
        A class that declares none (``core.StoreCore``) is not a dialect yet."""
        super().__init_subclass__(**kwargs)
        if dialect is None or queries is None:
            return
        cls.dialect, cls.queries = dialect, queries
        cls._sized = r.sized_columns(byte_length.format)
        cls._edges = {
            t: (
                edge.target.value,
                cls._array(sorted(s.value for s in edge.sources)),
                edge.target in TERMINAL,
            )
            for t, edge in TRANSITIONS.items()
        }

    # -- what a dialect provides -----------------------------------------------------------

    @staticmethod
    def _json(value: Any, /) -> Any:
        """A JSON value as a parameter."""
        raise NotImplementedError

    @staticmethod
    def _array(values: list[Any], /) -> Any:
        """A list as one parameter (a query matches against its members)."""
        raise NotImplementedError

    @staticmethod
    def _loads(value: Any, /) -> Any:
        """A JSON column's value as read."""
        raise NotImplementedError

    @staticmethod
    def _native(sql: str, /) -> str:
        """Ad hoc SQL with ``:name`` parameters in the driver's style."""
        raise NotImplementedError

    def _accept(self, connection: object | None) -> None:
        """Raise TypeError unless this store can write inside ``connection``'s transaction."""
        raise NotImplementedError

    async def _run(
        self, steps: Sequence[Step], write: bool, connection: object | None = None
    ) -> list[Done]:
        """Run the statements in order in one transaction (the caller's, if given)."""
        raise NotImplementedError

    async def _page_rows(self, sizes: str, params: Params, budget: r.PageBudget) -> list[Any]:
        """Feed the candidates of ``sizes`` to ``budget`` until it is full, lazily; then the
        whole rows of the seqs it took, in the same snapshot."""
        raise NotImplementedError

    async def _skew(self) -> float:
        """Seconds to add to a caller's ``now`` to put it on the timeline lease deadlines are
        judged on (the database's clock on PostgreSQL)."""
        return 0.0

    # -- plumbing --------------------------------------------------------------------------

    def _counted(
        self, insert: Step, ids: Sequence[str], skippable: Sequence[str] = ()
    ) -> list[Step]:
        """``insert`` with what keeps ``queue_counts`` right after it, in its unit of work.

        PostgreSQL counts inserted jobs in a statement-level trigger and needs nothing here.
        SQLite has no such trigger, and a row-level one costs an UPSERT per job (about half a
        bulk submit's store time), so the jobs ``ids`` names are counted once, after the insert
        (``count_inserted``). ``skippable``: the ids the insert may skip on a held unique key;
        such an id may name a job already there (the same job submitted again), which the
        count would find too, so those are taken off first (``uncount_present``): a job the
        insert left alone is added back as it was taken off, and only new rows add up.
        """
        count = self.queries.get("count_inserted")
        if count is None or not ids:
            return [insert]
        before = []
        if skippable:  # each id once: the queries join on them
            uncount = self.queries["uncount_present"]
            before.append(Step(uncount, {"ids": self._array(list(dict.fromkeys(skippable)))}))
        return [*before, insert, Step(count, {"ids": self._array(list(dict.fromkeys(ids)))})]

    def _job(self, row: Any) -> Job:
        return r.job_from_row(row, self._loads)

    async def _one(self, name: str, params: Params, write: bool = False) -> Done:
        (done,) = await self._run([Step(self.queries[name], params)], write)
        return done
