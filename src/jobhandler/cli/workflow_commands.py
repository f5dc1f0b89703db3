"""``jobhandler workflows``: submit a workflow from a JSON file, list, show and cancel them
(over HTTP, like every client command)."""

from __future__ import annotations

import json
from typing import Any

import click

from jobhandler.cli.client_commands import call, server_options
from jobhandler.cli.output import cell, show
from jobhandler.client.calls import Call, Calls
from jobhandler.process.entry import fail

STATUSES = ("running", "completed", "failed", "cancelled")
LIST_COLUMNS = ("id", "name", "status", "created_at", "jobs")
JOB_COLUMNS = ("key", "status", "after", "id", "error")
HEAD = ("id", "name", "status", "created_at", "cancelled_at")


def _summary(counts: dict[str, int]) -> str:
    """``3 waiting, 1 queued``: the statuses that have jobs, and how many."""
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "none"


def show_workflow(workflow: dict[str, Any], output: str) -> None:
    """Its fields, then a table of its jobs: key, status, the keys it runs after, id."""
    if output == "json":
        show(workflow, output)
        return
    for name in HEAD:
        click.echo(f"{name:<13} {cell(workflow.get(name))}")
    click.echo(f"{'jobs':<13} {_summary(workflow.get('counts') or {})}")
    click.echo()
    rows = [{**job, "after": ",".join(job.get("after") or []) or None} for job in workflow["jobs"]]
    show(rows, output, JOB_COLUMNS)


@click.group()
def workflows() -> None:
    """Workflows: jobs that run after other jobs. Submit, list, show and cancel them."""


@workflows.command("submit")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@server_options
def workflows_submit(file: Any, url: str, token: str | None, output: str) -> None:
    """Submit the workflow in FILE (- for stdin): the JSON body of POST /workflows,
    {"name": ..., "jobs": [{"key", "task", "payload", "after": [keys], ...}]}. Prints its id."""
    try:
        body = json.load(file)
    except ValueError as exc:
        fail(f"{file.name} is not JSON: {str(exc).splitlines()[0]}")
    if not isinstance(body, dict):
        fail(f'{file.name} must hold a JSON object: {{"name": ..., "jobs": [...]}}')
    workflow = call(url, token, Call("POST", "/workflows", body=body))
    if output == "json":
        show(workflow, output)
    else:
        click.echo(workflow["id"])


@workflows.command("list")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Repeatable."
)
@click.option("--name", help="Only workflows of this name.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@server_options
def workflows_list(
    statuses: tuple[str, ...],
    name: str | None,
    limit: int,
    url: str,
    token: str | None,
    output: str,
) -> None:
    """List workflows, newest first, with how many of their jobs are in each status."""
    found = call(url, token, Calls.list_workflows(list(statuses), name, limit))
    if output == "json":
        show(found, output)
        return
    rows = [{**item, "jobs": _summary(item.get("counts") or {})} for item in found]
    show(rows, output, LIST_COLUMNS)


@workflows.command("get")
@click.argument("workflow_id")
@server_options
def workflows_get(workflow_id: str, url: str, token: str | None, output: str) -> None:
    """Show a workflow and a table of its jobs (key, status, the keys it runs after, id)."""
    show_workflow(call(url, token, Calls.get_workflow(workflow_id)), output)


@workflows.command("cancel")
@click.argument("workflow_id")
@server_options
def workflows_cancel(workflow_id: str, url: str, token: str | None, output: str) -> None:
    """Cancel every job of a workflow that has not finished (a running one is stopped)."""
    show_workflow(call(url, token, Calls.cancel_workflow(workflow_id)), output)


COMMANDS = (workflows,)
