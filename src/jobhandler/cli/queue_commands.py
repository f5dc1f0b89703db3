"""``jobhandler queues``: list queues, pause and resume them, change their limits at run time
(over HTTP, like every client command; see flow.py for what the limits mean)."""

from __future__ import annotations

from typing import Any

import click

from jobhandler.cli.client_commands import call, server_options
from jobhandler.cli.output import show
from jobhandler.client.clients import Call

STATUSES = ("waiting", "queued", "scheduled", "processing", "completed", "failed", "cancelled")
FLOW = ("paused", "concurrency", "rate_limit", "key_concurrency", "key_rate_limit", "served")


def _rows(queues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"queue": q["queue"], **q["counts"], **{k: q.get(k) for k in FLOW}} for q in queues]


def _show(found: Any, output: str) -> None:
    rows = _rows(found if isinstance(found, list) else [found])
    show(rows if output == "table" else found, output, ("queue", *STATUSES, *FLOW))


@click.group(invoke_without_command=True)
@server_options
@click.pass_context
def queues(ctx: click.Context, url: str, token: str | None, output: str) -> None:
    """Queues: job counts by status, pause, limits, and whether a live worker serves each.

    With no command, lists them.
    """
    if ctx.invoked_subcommand is None:
        _show(call(url, token, Call("GET", "/queues")), output)


@queues.command("list")
@server_options
def queues_list(url: str, token: str | None, output: str) -> None:
    """List the queues (as `jobhandler queues` does)."""
    _show(call(url, token, Call("GET", "/queues")), output)


def _action(action: str, help_text: str) -> None:
    @queues.command(action, help=help_text)
    @click.argument("name")
    @server_options
    def command(name: str, url: str, token: str | None, output: str) -> None:
        _show(call(url, token, Call("POST", f"/queues/{name}/{action}", body={})), output)


_action("pause", "Pause a queue: its running jobs finish, none starts until it is resumed.")
_action("resume", "Resume a paused queue.")


def _limit(value: str) -> int | str | None:
    return None if value.lower() == "none" else value


@queues.command("set")
@click.argument("name")
@click.option("--concurrency", help="Jobs of the queue running at once, over all workers; none.")
@click.option("--rate-limit", help='Jobs of the queue started, at most: "100/s", "10/min"; none.')
@click.option("--key-concurrency", help="Jobs of one concurrency key running at once; none.")
@click.option("--key-rate-limit", help='Jobs of one concurrency key started: "10/s"; none.')
@server_options
def queues_set(name: str, url: str, token: str | None, output: str, **limits: str | None) -> None:
    """Change a queue's limits at run time ("none" removes one; a limit not given stays)."""
    body: dict[str, Any] = {}
    for field, given in limits.items():
        if given is not None:
            value = _limit(given)
            if field.endswith("concurrency") and isinstance(value, str) and value.isdigit():
                value = int(value)
            body[field] = value
    if not body:
        raise click.UsageError("give --concurrency, --rate-limit or the --key-* limits")
    _show(call(url, token, Call("PATCH", f"/queues/{name}", body=body)), output)


COMMANDS = (queues,)
