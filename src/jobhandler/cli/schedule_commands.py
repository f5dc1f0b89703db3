"""``jobhandler schedules``: the periodic schedules of a running server, paused and resumed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from jobhandler.cli.client_commands import call, server_options
from jobhandler.cli.output import show
from jobhandler.client.clients import Call

COLUMNS = ("name", "task", "when", "timezone", "missed", "paused", "next_run_at", "last_run_at")


def _row(schedule: dict[str, Any]) -> dict[str, Any]:
    every = schedule.get("every")
    when = schedule.get("cron") or f"every {every:g}s"
    return {**schedule, "when": when, "paused": "yes" if schedule["paused"] else "no"}


@click.group(invoke_without_command=True)
@server_options
@click.pass_context
def schedules(ctx: click.Context, url: str, token: str | None, output: str) -> None:
    """List periodic schedules with their next run (or pause / resume one)."""
    if ctx.invoked_subcommand is not None:
        return
    found = call(url, token, Call("GET", "/schedules"))
    show(found if output == "json" else [_row(s) for s in found], output, COLUMNS)


def _action(name: str, help_text: str) -> None:
    @schedules.command(name, help=help_text)
    @click.argument("schedule")
    @server_options
    def action(schedule: str, url: str, token: str | None, output: str) -> None:
        found = call(url, token, Call("POST", f"/schedules/{quote(schedule, safe='')}/{name}"))
        show(found if output == "json" else _row(found), output)


_action("pause", "Pause SCHEDULE: its due times pass without jobs until it is resumed.")
_action("resume", "Resume SCHEDULE from its next due time.")

COMMANDS = (schedules,)
