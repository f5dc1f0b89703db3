"""Commands that talk to a running server over HTTP: submit, jobs, tasks, queues, healthcheck."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from jobhandler.cli.output import show, show_job
from jobhandler.client.clients import (
    DEFAULT_URL,
    TERMINAL,
    Call,
    Calls,
    Client,
    ClientError,
    ServerUnreachable,
)
from jobhandler.handover import TOKEN_VARIABLE
from jobhandler.process.entry import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    EXIT_WAIT_TIMEOUT,
    fail,
)
from jobhandler.settings import PREFIX

F = TypeVar("F", bound=Callable[..., Any])


def server_options(fn: F) -> F:
    """Where the server is, the token to show it, and how to print its answer."""
    fn = click.option(
        "-o",
        "--output",
        envvar=PREFIX + "OUTPUT",
        show_envvar=True,
        default="table",
        show_default=True,
        type=click.Choice(["table", "json"]),
    )(fn)
    fn = click.option(
        "--token",
        envvar=TOKEN_VARIABLE,
        show_envvar=True,
        default=None,
        help="An API token (sent as a Bearer token).",
    )(fn)
    return click.option(
        "--url",
        envvar=PREFIX + "URL",
        show_envvar=True,
        default=DEFAULT_URL,
        show_default=True,
        help="The Job Handler server.",
    )(fn)


def call(url: str, token: str | None, request: Call) -> Any:
    with Client(url, token=token) as client:
        return _answer(lambda: client.send(request))


def _answer(send: Callable[[], Any]) -> Any:
    """What the server answered; an error is one line, exit 3 if unreachable or 5xx, else 2."""
    try:
        return send()
    except ServerUnreachable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except ClientError as exc:
        fail(_one_line(exc), EXIT_USAGE if exc.status < 500 else EXIT_UNREACHABLE)


def _one_line(exc: ClientError) -> str:
    """The error, with every field a 422 names that its message does not (a workflow's or a
    batch's message only counts them), on one line."""
    errors = getattr(exc, "errors", None) or []
    named = [
        f"{'.'.join(map(str, e.get('loc') or ()))}: {e.get('msg')}"
        for e in errors
        if isinstance(e, dict) and str(e.get("msg")) not in str(exc)
    ]
    if not named:
        return " ".join(str(exc).split())
    return " ".join(f"{exc} ({'; '.join(named)})".split())


def _parse_payload(text: str | None) -> Any:
    if text is None:
        return None
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except ValueError:
        fail(f"PAYLOAD must be JSON; to send a string, quote it: '\"{text}\"'")


@click.command()
@click.argument("task")
@click.argument("payload", required=False)
@click.option("--wait", is_flag=True, help="Wait for the job to finish and print its result.")
@click.option(
    "--wait-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help=f"With --wait: give up after this many seconds (exit {EXIT_WAIT_TIMEOUT}).",
)
@click.option("--queue")
@click.option("--priority", type=int)
@click.option("--delay", type=click.FloatRange(min=0), help="Seconds before the job is due.")
@click.option("--run-at", help="When the job is due, RFC 3339 (2030-01-01T09:00:00Z).")
@click.option("--max-attempts", type=click.IntRange(min=1))
@click.option("--unique-key", help="Create no job while one with this key waits or runs.")
@click.option(
    "--concurrency-key",
    help="Its tenant: claimed round-robin against the other keys, under per-key limits.",
)
@click.option(
    "--unique-for",
    type=click.FloatRange(min=0, min_open=True),
    help="With --unique-key: hold the key this many seconds from the submit instead.",
)
@click.option(
    "--debounce",
    type=click.FloatRange(min=0, min_open=True),
    help="With --unique-key: start this many seconds after the key's last submit; a submit"
    " while its job waits replaces that job's payload.",
)
@click.option(
    "--debounce-max-wait",
    type=click.FloatRange(min=0, min_open=True),
    help="With --debounce: start at the latest this many seconds after the key's first submit.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds one run may take."
)
@server_options
def submit(
    task: str,
    payload: str | None,
    wait: bool,
    wait_timeout: float,
    url: str,
    token: str | None,
    output: str,
    **options: Any,
) -> None:
    """Submit a job of TASK with a JSON PAYLOAD (use - to read it from stdin)."""
    job = call(url, token, Calls.submit(task, _parse_payload(payload), **options))
    if not wait:
        click.echo(json.dumps(job, indent=2) if output == "json" else job["id"])
        return
    with Client(url, token=token) as client:
        job = _answer(lambda: client.wait(job["id"], wait_timeout).model_dump(mode="json"))
    if output == "json":
        click.echo(json.dumps(job, indent=2))
    elif job["status"] == "completed":
        result = job["result"]
        click.echo(result if isinstance(result, str) else json.dumps(result))
    if job["status"] not in TERMINAL:
        fail(f"job {job['id']} still {job['status']} after {wait_timeout:g}s", EXIT_WAIT_TIMEOUT)
    if job["status"] != "completed":
        fail(f"job {job['id']} {job['status']}: {job.get('error')}", EXIT_FAILED)


@click.group()
def jobs() -> None:
    """List, inspect and steer jobs."""


@jobs.command("list")
@click.option("--status", "statuses", multiple=True, help="Repeat for several.")
@click.option("--queue")
@click.option("--task")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@server_options
def jobs_list(
    statuses: tuple[str, ...],
    queue: str | None,
    task: str | None,
    limit: int,
    url: str,
    token: str | None,
    output: str,
) -> None:
    """List jobs, newest first."""
    show(call(url, token, Calls.list(list(statuses), queue, task, limit)), output)


def _job_action(name: str, make: Callable[[str], Call], help_text: str) -> None:
    """``jobs NAME JOB_ID`` for one job; ``jobs NAME --status ... --yes`` for every match."""

    @jobs.command(name, help=help_text + _BULK_HELP)
    @click.argument("job_id", required=False)
    @click.option("--status", "statuses", multiple=True, help="Without JOB_ID. Repeatable.")
    @click.option("--queue", help="Without JOB_ID: jobs of this queue.")
    @click.option("--task", help="Without JOB_ID: jobs of this task.")
    @click.option("--created-before", help="Without JOB_ID: submitted before (RFC 3339).")
    @click.option("--yes", is_flag=True, help="Without JOB_ID: do not ask for confirmation.")
    @server_options
    def action(
        job_id: str | None, yes: bool, url: str, token: str | None, output: str, **where: Any
    ) -> None:
        where = {k: list(v) if k == "statuses" else v for k, v in where.items() if v}
        if job_id is not None:
            if where:
                fail("give a JOB_ID or filters, not both")
            result = call(url, token, make(job_id))
            if result is None:  # only delete answers with no body
                click.echo(f"deleted {job_id}")
            else:
                show(result, output)
            return
        body = {{"statuses": "status"}.get(k, k): v for k, v in where.items()}
        described = ", ".join(f"{k}={v}" for k, v in body.items()) or "every job"
        if not yes:
            click.confirm(f"{name} {described}?", abort=True, err=True)
        answer = call(url, token, Call("POST", f"/jobs/bulk/{name}", body=body, timeout=600))
        if output == "json":
            click.echo(json.dumps(answer))
        else:
            click.echo("\n".join(_bulk_lines(name, answer)))


def _bulk_lines(name: str, answer: dict[str, Any]) -> list[str]:
    """What a bulk action did: how many it changed, then each job a retry skipped because
    another job holds its unique key, with that job (as a one-job retry's error names it)."""
    skipped, count = answer.get("skipped") or [], answer.get("skipped_count") or 0
    if not count:
        return [f"{name}: {answer['count']} jobs"]
    lines = [f"{name}: {answer['count']} jobs, {count} skipped: another job holds their unique key"]
    lines += [f"{job['id']} held by {job['holder']}" for job in skipped]
    if count > len(skipped):
        lines.append(f"... and {count - len(skipped)} more")
    return lines


@jobs.command("get")
@click.argument("job_id")
@server_options
def jobs_get(job_id: str, url: str, token: str | None, output: str) -> None:
    """Show one job, with every run it had."""
    job = call(url, token, Calls.get(job_id))
    show_job(job, call(url, token, Call("GET", f"/jobs/{job_id}/attempts")), output)


_BULK_HELP = """

Without JOB_ID: every job matching the filters (--status, --queue, --task, --created-before;
none: every job), after a confirmation (--yes skips it). Only jobs whose status allows the
action change; it prints how many did."""

_job_action("cancel", Calls.cancel, "Cancel a job (a running one is stopped).")
_job_action("retry", Calls.retry, "Run a failed or cancelled job again.")
_job_action("delete", Calls.delete, "Delete a finished job.")


@click.command()
@server_options
def tasks(url: str, token: str | None, output: str) -> None:
    """List the server's tasks."""
    columns = ("name", "queue", "max_attempts", "timeout", "isolation")
    show(call(url, token, Calls.tasks()), output, columns)


@click.command()
@server_options
def healthcheck(url: str, token: str | None, output: str) -> None:
    """Exit 0 when the server and its store answer, 3 otherwise."""
    show(call(url, token, Calls.ready()), output)


COMMANDS = (submit, jobs, tasks, healthcheck)
