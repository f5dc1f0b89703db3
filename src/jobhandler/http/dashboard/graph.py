"""A workflow's graph as boxes and lines for the workflow page's SVG, laid out on the server.

Each job goes in the column of its longest path from a root (so every line runs left to right),
jobs of a column stacked in their keys' natural order ("part-2" before "part-10"), each column
centred on the tallest.
A drawing stays small whatever the workflow's size: a column shows its first ``per_layer``
jobs and one box standing for the rest ("+ 9,950 more"), at most ``max_layers`` columns are
drawn, and lines between the same two boxes are drawn once; the page's table lists every job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from jobhandler.model.workflows import WorkflowJob

BOX_WIDTH, BOX_HEIGHT = 168, 40
COLUMN_GAP, ROW_GAP, MARGIN = 64, 12, 4
PER_LAYER = 25  # boxes per column before the rest become one "more" box
MAX_LAYERS = 40  # columns drawn; deeper jobs are only in the table
MAX_LINES = 4000
LABEL_CHARS = 22
_RUNS = re.compile(r"\d+|\D+")


@dataclass(frozen=True, slots=True)
class Box:
    """One drawn job, or (``job_id`` None) the ``hidden`` jobs of a column not drawn."""

    x: int
    y: int
    key: str
    status: str
    job_id: str | None = None
    hidden: int = 0
    summary: str = ""  # a "more" box's: its jobs per status

    @property
    def label(self) -> str:
        if self.job_id is None:
            return f"+ {self.hidden:,} more"
        return self.key if len(self.key) <= LABEL_CHARS else self.key[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class Drawing:
    width: int
    height: int
    boxes: list[Box]
    lines: list[str]  # SVG path data, parent to child
    layers: int  # columns the whole graph has
    undrawn: int  # jobs in no box: hidden in a "more" box or deeper than the last column


def layers(jobs: Sequence[WorkflowJob]) -> list[list[WorkflowJob]]:
    """The jobs by depth: a root at 0, any other job one past its deepest parent (Kahn's
    order, so a chain of any length needs no recursion); parents unknown here are ignored."""
    index = {job.key: i for i, job in enumerate(jobs)}
    parents = [{index[p] for p in job.after if p in index} for job in jobs]
    children: list[list[int]] = [[] for _ in jobs]
    for child, found in enumerate(parents):
        for parent in found:
            children[parent].append(child)
    unsettled = [len(found) for found in parents]
    depth = [0] * len(jobs)
    ready = [i for i, n in enumerate(unsettled) if n == 0]
    while ready:
        parent = ready.pop()
        for child in children[parent]:
            depth[child] = max(depth[child], depth[parent] + 1)
            unsettled[child] -= 1
            if unsettled[child] == 0:
                ready.append(child)
    grouped: list[list[WorkflowJob]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for i, job in enumerate(jobs):
        grouped[depth[i]].append(job)
    return [sorted(column, key=natural) for column in grouped]


def natural(job: WorkflowJob) -> tuple[tuple[int, int | str], ...]:
    """A key's sort order with its runs of digits compared as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _RUNS.findall(job.key))


def draw(
    jobs: Sequence[WorkflowJob],
    per_layer: int = PER_LAYER,
    max_layers: int = MAX_LAYERS,
    grouped: list[list[WorkflowJob]] | None = None,  # ``layers(jobs)``, if the caller has it
) -> Drawing:
    grouped = layers(jobs) if grouped is None else grouped
    drawn = grouped[:max_layers]
    rows = max((min(len(column), per_layer + 1) for column in drawn), default=0)
    boxes: list[Box] = []
    anchor: dict[str, int] = {}  # job key -> the box that shows it
    for c, column in enumerate(drawn):
        shown = column[:per_layer]
        count = len(shown) + (len(column) > per_layer)
        x = MARGIN + c * (BOX_WIDTH + COLUMN_GAP)
        top = MARGIN + (rows - count) * (BOX_HEIGHT + ROW_GAP) // 2
        for r, job in enumerate(shown):
            anchor[job.key] = len(boxes)
            y = top + r * (BOX_HEIGHT + ROW_GAP)
            boxes.append(Box(x, y, job.key, job.status.value, job.id))
        if len(column) > per_layer:
            for job in column[per_layer:]:
                anchor[job.key] = len(boxes)
            y = top + len(shown) * (BOX_HEIGHT + ROW_GAP)
            rest = column[per_layer:]
            boxes.append(Box(x, y, "", "more", None, len(rest), _summary(rest)))
    undrawn = len(jobs) - sum(1 for box in boxes if box.job_id is not None)
    return Drawing(
        width=MARGIN * 2 + max(len(drawn) * (BOX_WIDTH + COLUMN_GAP) - COLUMN_GAP, 0),
        height=MARGIN * 2 + max(rows * (BOX_HEIGHT + ROW_GAP) - ROW_GAP, 0),
        boxes=boxes,
        lines=_lines(jobs, boxes, anchor),
        layers=len(grouped),
        undrawn=undrawn,
    )


def _summary(jobs: Sequence[WorkflowJob]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{n:,} {status}" for status, n in ranked)


def _lines(jobs: Sequence[WorkflowJob], boxes: list[Box], anchor: dict[str, int]) -> list[str]:
    pairs: dict[tuple[int, int], None] = {}  # in order, each once
    for job in jobs:
        to = anchor.get(job.key)
        if to is None:
            continue
        for parent in job.after:
            start = anchor.get(parent)
            if start is not None and start != to:
                pairs[(start, to)] = None
                if len(pairs) >= MAX_LINES:
                    return [_curve(boxes[a], boxes[b]) for a, b in pairs]
    return [_curve(boxes[a], boxes[b]) for a, b in pairs]


def _curve(parent: Box, child: Box) -> str:
    """From the parent's right edge to the child's left edge, level at both ends."""
    x1, y1 = parent.x + BOX_WIDTH, parent.y + BOX_HEIGHT // 2
    x2, y2 = child.x, child.y + BOX_HEIGHT // 2
    bend = (x2 - x1) // 2
    return f"M{x1} {y1} C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}"
