"""Celery-style sugar over the workflow builder (model/builder.py), for people moving from
Celery: signatures (``task.s(payload)``) composed with ``chain``, ``group`` and ``chord`` into
one workflow graph, submitted as one with ``await canvas.enqueue()``::

    await chain(fetch.s(url), parse.s(), store.s()).enqueue()
    await chord(group(resize.s(i) for i in images), zip_all.s()).enqueue(name="thumbnails")

One difference from Celery: a job's payload is its own, never its parent's result. A job reads
what its parents returned as ``ctx.parent_results`` (key -> result), so ``parse`` above takes
its own payload (``None`` here) and finds ``fetch``'s result in ``ctx.parent_results["fetch"]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

from jobhandler.model.builder import Node, Task, Workflow, WorkflowHandle, WorkflowSink
from jobhandler.model.workflows import KEY_MAX_LENGTH, OnParentFailure

R = TypeVar("R")


class Canvas:
    """A piece of a workflow: a signature, a chain, a group or a chord."""

    def add_to(self, wf: Workflow, after: Sequence[Node[Any]] = ()) -> list[Node[Any]]:
        """Add this piece to ``wf``, after the nodes ``after``; returns its last nodes (what
        runs after this piece runs after them)."""
        raise NotImplementedError

    def tasks(self) -> Iterator[Task[Any, Any]]:
        raise NotImplementedError

    def workflow(self, name: str | None = None) -> Workflow:
        """This piece as a workflow builder (to add more to it); named after its shape by
        default, such as ``chain(fetch, parse)``."""
        sinks = {id(task.jobs): task.jobs for task in self.tasks()}
        if len(sinks) != 1:
            raise ValueError("a workflow needs at least one task, all of one App")
        # A task's connection is the App's, which stores workflows too (app.Connection).
        sink = cast("WorkflowSink", next(iter(sinks.values())))
        wf = Workflow(sink, name or _shortened(repr(self)))
        self.add_to(wf)
        return wf

    async def enqueue(self, name: str | None = None) -> WorkflowHandle:
        """Submit this piece as one workflow (every job or none); returns its handle."""
        return await self.workflow(name).enqueue()

    def enqueue_sync(self, name: str | None = None) -> WorkflowHandle:
        """``enqueue`` for code without an event loop."""
        return self.workflow(name).enqueue_sync()


class TaskSignature(Canvas, Generic[R]):
    """One job to be: a task, its own payload and options (``task.s(payload, **options)``)."""

    def __init__(
        self,
        task: Task[Any, R],
        payload: Any,
        key: str | None = None,
        on_parent_failure: OnParentFailure = "cancel",
        options: dict[str, Any] | None = None,
    ) -> None:
        self.task = task
        self.payload = payload
        self.key = key
        self.on_parent_failure: OnParentFailure = on_parent_failure
        self.options = options or {}

    def add_to(self, wf: Workflow, after: Sequence[Node[Any]] = ()) -> list[Node[Any]]:
        node = wf.add(
            self.task,
            self.payload,
            after=after,
            on_parent_failure=self.on_parent_failure,
            key=self.key,
            **self.options,
        )
        return [node]

    def tasks(self) -> Iterator[Task[Any, Any]]:
        yield self.task

    def __repr__(self) -> str:
        return self.key or self.task.name


class chain(Canvas):
    """Each piece runs after the one before it has finished: ``chain(a.s(1), b.s(2))``."""

    def __init__(self, *pieces: Canvas) -> None:
        self.pieces = list(pieces)

    def add_to(self, wf: Workflow, after: Sequence[Node[Any]] = ()) -> list[Node[Any]]:
        last = list(after)
        for piece in self.pieces:
            last = piece.add_to(wf, last)
        return last

    def tasks(self) -> Iterator[Task[Any, Any]]:
        for piece in self.pieces:
            yield from piece.tasks()

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.pieces))})"


class group(Canvas):
    """Pieces that run side by side: ``group(t.s(p) for p in payloads)`` or ``group(a.s(),
    b.s())``. What runs after a group runs after all of its pieces."""

    def __init__(self, *pieces: Canvas | Iterable[Canvas]) -> None:
        self.pieces: list[Canvas] = []
        for piece in pieces:
            self.pieces.extend([piece] if isinstance(piece, Canvas) else piece)

    def add_to(self, wf: Workflow, after: Sequence[Node[Any]] = ()) -> list[Node[Any]]:
        if not self.pieces:  # nothing to wait for: what follows runs after what came before
            return list(after)
        return [node for piece in self.pieces for node in piece.add_to(wf, after)]

    def tasks(self) -> Iterator[Task[Any, Any]]:
        for piece in self.pieces:
            yield from piece.tasks()

    def __repr__(self) -> str:
        return f"group({', '.join(map(repr, self.pieces))})"


class chord(chain):
    """A group, then a callback that runs once all of it is settled:
    ``chord(group(...), merge.s())``. The callback reads the group's results from
    ``ctx.parent_results``; it is cancelled if one of them failed, unless its signature says
    ``on_parent_failure="run"``."""

    def __init__(self, header: Canvas | Iterable[Canvas], body: Canvas) -> None:
        super().__init__(header if isinstance(header, group) else group(header), body)

    def __repr__(self) -> str:
        return f"chord({self.pieces[0]!r}, {self.pieces[1]!r})"


def _shortened(text: str) -> str:
    return text if len(text) <= KEY_MAX_LENGTH else text[: KEY_MAX_LENGTH - 1] + "…"
