"""How commands print what the server or the store answered: a table, a listing, or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

JOB_COLUMNS = ("id", "task", "queue", "status", "attempt", "created_at", "error")
ATTEMPT_COLUMNS = ("attempt", "worker_id", "started_at", "finished_at", "outcome", "error")


def show(data: Any, output: str, columns: Sequence[str] = JOB_COLUMNS) -> None:
    """JSON with ``-o json``; otherwise a list as a table, one object as a key/value listing."""
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    if not isinstance(data, list):
        for key, value in data.items():
            click.echo(f"{key:<17} {cell(value)}")
        return
    table = [[cell(row.get(c)) for c in columns] for row in data]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def show_job(job: dict[str, Any], attempts: list[dict[str, Any]], output: str) -> None:
    """One job, then every run it had (in JSON: the job with an ``attempts`` list added)."""
    if output == "json":
        show({**job, "attempts": attempts}, output)
        return
    show(job, output)
    click.echo()
    show(attempts, output, ATTEMPT_COLUMNS)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\n", " ")[:80]


def utc(ts: float | None) -> str | None:
    """A Unix time as RFC 3339 in UTC, to the second."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
