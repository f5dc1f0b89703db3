"""Named queries: ``sql/*.sql`` (both dialects) and ``sql/<dialect>/*.sql`` (one dialect's own),
one ``-- name: xxx`` block per statement (or per ``:fragment``, a piece that statements write
in as ``{xxx}``); a file per resource, a migration is a numbered file.

Both dialects write parameters as ``:name`` (turned into psycopg's ``%(name)s`` for PostgreSQL)
and status sets as ``{claimable}``-style words, filled in here from the one state machine:
written into the SQL, not bound, so the partial indexes on status apply, and no status that
``jobs.TRANSITIONS`` decides is spelled out in a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from jobhandler.model.jobs import FREE_INTERRUPTIONS, TERMINAL, TRANSITIONS, JobStatus, Transition


def status_list(statuses: Iterable[JobStatus]) -> str:
    """``('queued', 'scheduled')``: a literal set of statuses, in a fixed order."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(statuses)) + ")"


def _status(status: JobStatus) -> str:
    return f"'{status.value}'"


# The words a query may use, each derived from the state machine.
STATUS_WORDS: dict[str, str] = {
    "unstarted": status_list(TRANSITIONS[Transition.CANCEL].sources),
    "terminal": status_list(TERMINAL),
    "claimable": status_list(TRANSITIONS[Transition.CLAIM].sources),
    "running": _status(TRANSITIONS[Transition.CLAIM].target),
    # A waiting job is cancelled at once; a running one is flagged for its worker to stop.
    "cancellable": status_list(
        TRANSITIONS[Transition.CANCEL].sources | TRANSITIONS[Transition.ABORT].sources
    ),
    "cancelled": _status(TRANSITIONS[Transition.CANCEL].target),
    "retryable": status_list(TRANSITIONS[Transition.RETRY].sources),
    "requeued": _status(TRANSITIONS[Transition.RETRY].target),
    "waiting": _status(JobStatus.WAITING),
    # A debounced job's new start decides between these two (uniqueness.sql's debounce).
    "queued": _status(JobStatus.QUEUED),
    "scheduled": _status(JobStatus.SCHEDULED),  # a retried job whose parents are not all settled
    "free_interruptions": str(FREE_INTERRUPTIONS),
    # Pruning keeps failed and cancelled jobs longer than completed ones.
    "completed": status_list([JobStatus.COMPLETED]),
    "failed": status_list(TERMINAL - {JobStatus.COMPLETED}),
}

_WORD = re.compile(r"\{(\w+)\}")
_NAME = re.compile(r"^-- name: (\w+)((?: :\w+)*)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    text: str  # in the driver's own parameter style
    columnar: bool = False  # ``:columnar``: a batch binds each column as one array
    wakes: bool = False  # ``:wakes``: its commit may give idle workers something to claim
    # ``:relaxed``: losing its commit to a power cut only makes a job run again (a claim, a
    # heartbeat, an outcome: at-least-once allows it), so it need not wait for the disk.
    relaxed: bool = False
    # ``:when_full``: may run while a SQLite store is short of disk (sqlite/space.py): it frees
    # space (a cancel, a delete, a prune) or lets work already started end (an outcome, a
    # lease), and writes little. A unit of work with a step not so marked is refused then.
    when_full: bool = False


def fill(text: str, words: Mapping[str, str]) -> str:
    """The words of ``text`` written in; a KeyError names an unknown one."""
    return _WORD.sub(lambda m: words[m.group(1)], text)


def load(dialect: str, native: Callable[[str], str], words: Mapping[str, str]) -> dict[str, Query]:
    """The queries both dialects share (``sql/*.sql``) and the dialect's own
    (``sql/<dialect>/*.sql`` but the numbered migrations); ``native`` turns ``:name`` into the
    driver's style and ``words`` adds to the status words (column lists, channel names)."""
    everything = {**STATUS_WORDS, **words}
    blocks = [b for path in query_files(dialect) for b in _blocks(path.read_text(encoding="utf-8"))]
    # ``:fragment``: no statement, but a word the statements write in (CTEs two claims share).
    for name, flags, text in blocks:
        if ":fragment" in flags:
            everything[name] = fill(text, everything)
    found: dict[str, Query] = {}
    for name, flags, text in blocks:
        if ":fragment" in flags:
            continue
        if name in found:
            raise ValueError(f"{dialect}: query {name!r} is named twice")
        found[name] = Query(
            name,
            native(fill(text, everything)),
            columnar=":columnar" in flags,
            wakes=":wakes" in flags,
            relaxed=":relaxed" in flags,
            when_full=":when_full" in flags,
        )
    return found


def query_files(dialect: str) -> list[Traversable]:
    """The files of named queries a dialect loads, in a fixed order."""
    folder = resources.files("jobhandler.store").joinpath("sql")
    shared = [f for f in folder.iterdir() if f.name.endswith(".sql")]
    own = [
        f
        for f in folder.joinpath(dialect).iterdir()
        if f.name.endswith(".sql") and not f.name[:1].isdigit()
    ]
    return sorted(shared, key=lambda f: f.name) + sorted(own, key=lambda f: f.name)


def _blocks(script: str) -> list[tuple[str, list[str], str]]:
    """Each ``-- name:`` block of a file: its name, its flags, its statement without comments."""
    heads = list(_NAME.finditer(script))
    blocks = []
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        body = script[head.end() : after.start() if after else len(script)]
        lines = [ln for ln in body.splitlines() if not ln.strip().startswith("--")]
        text = "\n".join(lines).strip().removesuffix(";")
        blocks.append((head.group(1), head.group(2).split(), text))
    return blocks
