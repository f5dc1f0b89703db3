"""The ``jobhandler`` command. Every option can also be set as a ``JOBHANDLER_*`` variable.

Exit codes: 0 success; 1 the job failed or was cancelled (``submit --wait``), or a forced stop;
2 bad usage or input (the server answered 4xx); 3 the server or its store could not be reached
(or answered 5xx); 4 ``submit --wait`` gave up before the job finished.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from jobhandler.app import App, load_app
from jobhandler.client import (
    DEFAULT_URL,
    TERMINAL,
    Call,
    Calls,
    Client,
    ClientError,
    ServerUnreachable,
)
from jobhandler.errors import StoreUnavailable
from jobhandler.redact import install_log_redaction, redact
from jobhandler.settings import Settings, scrub_environment
from jobhandler.tokens import SCOPES

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_WAIT_TIMEOUT = 4

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# -- shared options --------------------------------------------------------------------------


def _option(*names: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, envvar=f"JOBHANDLER_{env}", show_envvar=True, **kwargs)


def store_options(fn: F) -> F:
    fn = _option(
        "--app",
        "app_ref",
        env="APP",
        default=Settings().app,
        show_default=True,
        help="The App to load, as module:attribute.",
    )(fn)
    fn = _option(
        "--database",
        "database_url",
        env="DATABASE_URL",
        default=Settings().database_url,
        show_default=True,
        help="sqlite:///FILE or postgresql://...",
    )(fn)
    fn = _option(
        "--log-level",
        env="LOG_LEVEL",
        default="info",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
    )(fn)
    fn = _option(
        "--listen/--no-listen",
        env="LISTEN",
        default=Settings().listen,
        show_default=True,
        help="PostgreSQL LISTEN/NOTIFY wake-ups; turn off behind a transaction-mode pooler.",
    )(fn)
    fn = _option(
        "--sqlite-synchronous",
        env="SQLITE_SYNCHRONOUS",
        default=Settings().sqlite_synchronous,
        show_default=True,
        type=click.Choice(["OFF", "NORMAL", "FULL", "EXTRA"]),
        help="SQLite durability: FULL survives power loss, NORMAL only process crashes.",
    )(fn)
    return fn


def worker_options(fn: F) -> F:
    defaults = Settings()
    fn = _option(
        "--concurrency",
        env="CONCURRENCY",
        default=defaults.concurrency,
        show_default=True,
        type=click.IntRange(min=1),
        help="Jobs run at once by this worker.",
    )(fn)
    fn = _option(
        "--queues",
        env="QUEUES",
        default="",
        help="Comma-separated queues to serve (default: every queue the app's tasks use).",
    )(fn)
    fn = _option(
        "--shutdown-timeout",
        env="SHUTDOWN_TIMEOUT",
        default=defaults.shutdown_timeout,
        show_default=True,
        type=click.FloatRange(min=0),
        help="Seconds running jobs get to finish on SIGTERM.",
    )(fn)
    fn = _option(
        "--lease",
        env="LEASE",
        default=defaults.lease,
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="Seconds a claim lasts without heartbeats.",
    )(fn)
    fn = _option(
        "--heartbeat-interval",
        env="HEARTBEAT_INTERVAL",
        default=defaults.heartbeat_interval,
        show_default=True,
        type=click.FloatRange(min=0.05),
    )(fn)
    fn = _option(
        "--rescue-interval",
        env="RESCUE_INTERVAL",
        default=defaults.rescue_interval,
        show_default=True,
        type=click.FloatRange(min=0.05),
    )(fn)
    fn = _option(
        "--poll-interval",
        env="POLL_INTERVAL",
        default=defaults.poll_interval,
        show_default=True,
        type=click.FloatRange(min=0.01),
    )(fn)
    for name, help_text in (
        ("keep-completed", "Seconds a completed job is kept before it is pruned."),
        ("keep-failed", "Seconds a failed or cancelled job is kept before it is pruned."),
    ):
        field = name.replace("-", "_")
        fn = _option(
            f"--{name}",
            env=field.upper(),
            default=getattr(defaults, field),
            show_default=True,
            type=click.FloatRange(min=0),
            help=help_text,
        )(fn)
    return fn


def http_options(fn: F) -> F:
    """The API server's limits and access rules (see docs/security.md)."""
    defaults = Settings()
    for name, kind, help_text in (
        ("max-body-bytes", click.IntRange(min=1), "Larger request bodies get 413."),
        ("max-payload-bytes", click.IntRange(min=1), "Larger payloads (as JSON) get 422."),
        ("max-json-depth", click.IntRange(1, 1000), "Deeper nesting in a body gets 422."),
        ("max-page-bytes", click.IntRange(min=1024), "A list page ends early past this size."),
        ("max-connections", click.IntRange(min=1), "Concurrent connections; more get 503."),
        ("keep-alive", click.FloatRange(min=0.1), "Seconds an idle connection stays open."),
    ):
        field = name.replace("-", "_")
        fn = _option(
            f"--{name}",
            env=field.upper(),
            default=getattr(defaults, field),
            show_default=True,
            type=kind,
            help=help_text,
        )(fn)
    fn = _option(
        "--allowed-hosts",
        env="ALLOWED_HOSTS",
        default="",
        help="Comma-separated Host names the API answers (default: the loopback names when"
        " bound to loopback, any otherwise).",
    )(fn)
    fn = _option(
        "--cors-origins",
        env="CORS_ORIGINS",
        default="",
        help="Comma-separated browser origins allowed to call the API (default: none).",
    )(fn)
    fn = _option(
        "--insecure-no-auth",
        env="INSECURE_NO_AUTH",
        is_flag=True,
        help="Serve on a non-loopback address although the store holds no API token.",
    )(fn)
    return fn


def url_option(fn: F) -> F:
    fn = _option(
        "--url", env="URL", default=DEFAULT_URL, show_default=True, help="The Job Handler server."
    )(fn)
    fn = _option(
        "--token", env="TOKEN", default=None, help="An API token (sent as a Bearer token)."
    )(fn)
    fn = _option(
        "-o",
        "--output",
        env="OUTPUT",
        default="table",
        show_default=True,
        type=click.Choice(["table", "json"]),
    )(fn)
    return fn


def configure_logging(settings: Settings) -> None:
    # Before any handler exists: every record, uvicorn's included, has its passwords hidden.
    install_log_redaction()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )


def build_settings(**values: Any) -> Settings:
    values["app"] = values.pop("app_ref")
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(map(str, first['loc']))}: {first['msg'].removeprefix('Value error, ')}")
    scrub_environment()
    configure_logging(settings)
    return settings


def load(settings: Settings) -> App:
    # Like uvicorn and celery: `--app myapp:app` finds myapp.py in the current directory. The
    # console script, unlike `python -m`, does not put it on the path by itself.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_app(settings.app)
    except (ImportError, ValueError) as exc:
        fail(f"cannot load the app {settings.app!r}: {exc}")


def run_process(settings: Settings, *, http: bool, worker: bool) -> None:
    from jobhandler.runtime import PublicBindRefused, run

    app = load(settings)
    try:
        asyncio.run(run(app, settings, http=http, worker=worker))
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except PublicBindRefused as exc:  # serve on a network address, and no token to guard it
        fail(str(exc))


# -- commands ----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jobhandler")
def main() -> None:
    """Job Handler: crash-safe background jobs for Python."""


@main.command()
@store_options
@worker_options
@_option("--host", env="HOST", default=Settings().host, show_default=True)
@_option(
    "--port", env="PORT", default=Settings().port, show_default=True, type=click.IntRange(0, 65535)
)
@_option("--no-worker", env="NO_WORKER", is_flag=True, help="Serve the API only.")
@http_options
def serve(no_worker: bool, **options: Any) -> None:
    """Serve the HTTP API, with a worker in the same process unless --no-worker."""
    run_process(build_settings(**options), http=True, worker=not no_worker)


@main.command()
@store_options
@worker_options
@_option(
    "--processes",
    env="PROCESSES",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes, kept running by a supervisor.",
)
def worker(processes: int, **options: Any) -> None:
    """Run a worker: claim and run jobs until SIGTERM (a second signal exits at once)."""
    settings = build_settings(**options)
    if processes == 1:
        run_process(settings, http=False, worker=True)
        return
    from jobhandler.supervisor import supervise

    load(settings)  # fail here, once, if the app cannot be imported
    sys.exit(asyncio.run(supervise(settings, processes)))


@main.command()
@store_options
def migrate(**options: Any) -> None:
    """Create or upgrade the store's schema."""
    from jobhandler.store import open_store

    settings = build_settings(**options)

    async def apply() -> None:
        store = open_store(settings)
        try:
            await store.migrate()
        finally:
            await store.close()

    try:
        asyncio.run(apply())
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    click.echo(f"migrated {redact(settings.database_url)}")


@main.group()
def store() -> None:
    """Operate on stores directly."""


@store.command("copy")
@click.option("--from", "source_url", required=True, help="The store to copy from.")
@click.option("--to", "target_url", required=True, help="An empty store to copy into.")
def store_copy(source_url: str, target_url: str) -> None:
    """Copy every job (queued work and history) from one store into another."""
    import time

    from jobhandler.store import open_store, sqlite_path
    from jobhandler.transfer import TransferRefused, copy_jobs

    source_settings = build_settings(database_url=source_url, app_ref=Settings().app)
    target_settings = build_settings(database_url=target_url, app_ref=Settings().app)
    is_file = "://" not in source_url or source_url.startswith("sqlite:")
    if is_file and not os.path.exists(sqlite_path(source_url)):
        fail(f"the source store {sqlite_path(source_url)} does not exist")

    async def copy(progress: CopyProgress) -> int:
        source, target = open_store(source_settings), open_store(target_settings)
        try:
            await source.migrate()
            await target.migrate()
            live_within = 3 * max(source_settings.lease, source_settings.heartbeat_interval)
            total = sum(sum(q.counts.values()) for q in await source.queue_stats())
            progress.start(total)
            return await copy_jobs(source, target, time.time(), live_within, progress.advance)
        finally:
            await source.close()
            await target.close()

    try:
        with CopyProgress() as progress:
            copied = asyncio.run(copy(progress))
    except TransferRefused as exc:
        fail(f"refused: {exc}", EXIT_FAILED)
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    click.echo(f"copied {copied} jobs")


class CopyProgress:
    """A progress bar on stderr while a copy runs, when stderr is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        from rich.progress import Progress

        self._bar = Progress(transient=True) if sys.stderr.isatty() else None
        self._task: Any = None

    def __enter__(self) -> CopyProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task("copying jobs", total=total)

    def advance(self, copied: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=copied)


def _call(url: str, token: str | None, call: Call) -> Any:
    with Client(url, token=token) as client:
        try:
            return client.send(call)
        except ServerUnreachable as exc:
            fail(str(exc), EXIT_UNREACHABLE)
        except ClientError as exc:
            fail(str(exc), EXIT_USAGE if exc.status < 500 else EXIT_UNREACHABLE)


def _parse_payload(text: str | None) -> Any:
    if text is None:
        return None
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except ValueError:
        fail(f"PAYLOAD must be JSON; to send a string, quote it: '\"{text}\"'")


JOB_COLUMNS = ("id", "task", "queue", "status", "attempt", "created_at", "error")


def _print(data: Any, output: str, columns: Sequence[str] = JOB_COLUMNS) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    if not isinstance(data, list):  # one object: a key/value listing
        for key, value in data.items():
            click.echo(f"{key:<17} {_cell(value)}")
        return
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\n", " ")[:80]


@main.command()
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
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds one run may take."
)
@url_option
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
    job = _call(url, token, Calls.submit(task, _parse_payload(payload), **options))
    if not wait:
        click.echo(json.dumps(job, indent=2) if output == "json" else job["id"])
        return
    with Client(url, token=token) as client:
        try:
            job = client.wait(job["id"], wait_timeout)
        except ServerUnreachable as exc:
            fail(str(exc), EXIT_UNREACHABLE)
        except ClientError as exc:
            fail(str(exc), EXIT_USAGE if exc.status < 500 else EXIT_UNREACHABLE)
    if output == "json":
        click.echo(json.dumps(job, indent=2))
    elif job["status"] == "completed":
        result = job["result"]
        click.echo(result if isinstance(result, str) else json.dumps(result))
    if job["status"] not in TERMINAL:
        fail(f"job {job['id']} still {job['status']} after {wait_timeout:g}s", EXIT_WAIT_TIMEOUT)
    if job["status"] != "completed":
        fail(f"job {job['id']} {job['status']}: {job.get('error')}", EXIT_FAILED)


@main.group()
def jobs() -> None:
    """List, inspect and steer jobs."""


@jobs.command("list")
@click.option("--status", "statuses", multiple=True, help="Repeat for several.")
@click.option("--queue")
@click.option("--task")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@url_option
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
    _print(_call(url, token, Calls.list(list(statuses), queue, task, limit)), output)


def _job_action(name: str, make: Callable[[str], Call], help_text: str) -> None:
    @jobs.command(name, help=help_text)
    @click.argument("job_id")
    @url_option
    def action(job_id: str, url: str, token: str | None, output: str) -> None:
        result = _call(url, token, make(job_id))
        if result is None:  # only delete answers with no body
            click.echo(f"deleted {job_id}")
        else:
            _print(result, output)


_job_action("get", Calls.get, "Show one job.")
_job_action("cancel", Calls.cancel, "Cancel a job (a running one is stopped).")
_job_action("retry", Calls.retry, "Run a failed or cancelled job again.")
_job_action("delete", Calls.delete, "Delete a finished job.")


@main.command()
@url_option
def tasks(url: str, token: str | None, output: str) -> None:
    """List the server's tasks."""
    _print(
        _call(url, token, Calls.tasks()),
        output,
        ("name", "queue", "max_attempts", "timeout", "isolation"),
    )


@main.command()
@url_option
def queues(url: str, token: str | None, output: str) -> None:
    """Job counts by queue and status."""
    rows = [{"queue": q["queue"], **q["counts"]} for q in _call(url, token, Calls.queues())]
    statuses = ("queued", "scheduled", "processing", "completed", "failed", "cancelled")
    _print(rows, output, ("queue", *statuses))


@main.command()
@url_option
def healthcheck(url: str, token: str | None, output: str) -> None:
    """Exit 0 when the server and its store answer, 3 otherwise."""
    _print(_call(url, token, Calls.ready()), output)


# -- API tokens --------------------------------------------------------------------------------

T = TypeVar("T")


@main.group()
def token() -> None:
    """Create, list and revoke API tokens; the store keeps only their hashes.

    Once the store holds any token, every route but /healthz and /readyz needs one. A running
    server sees a new or revoked token within about a second.
    """


def _with_app(options: dict[str, Any], use: Callable[[App], Awaitable[T]]) -> T:
    """Run ``use`` against the store the options name, as ``migrate`` does: no server needed."""
    settings = build_settings(**options)

    async def run() -> T:
        async with App().connected(settings) as app:
            return await use(app)

    try:
        return asyncio.run(run())
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)


@token.command("create")
@click.option(
    "--scope",
    required=True,
    type=click.Choice(SCOPES),
    help="read: every GET; submit: submit jobs and see them and the tasks; admin: everything.",
)
@click.option("--name", help="What to list and revoke it by (default: SCOPE-<random>).")
@store_options
def token_create(scope: str, name: str | None, **options: Any) -> None:
    """Create a token. It is printed once, as the last line, and cannot be shown again."""
    try:
        info, secret = _with_app(options, lambda app: app.create_token(scope, name))
    except ValueError as exc:  # a bad or taken name
        fail(str(exc))
    click.echo(f"created {info.scope} token {info.name!r}; it is shown only this once:")
    click.echo(secret)


@token.command("list")
@click.option("-o", "--output", default="table", type=click.Choice(["table", "json"]))
@store_options
def token_list(output: str, **options: Any) -> None:
    """List tokens: names, scopes and when they were made and last used (never the tokens)."""
    rows = [
        {
            "name": t.name,
            "scope": t.scope,
            "created_at": _utc(t.created_at),
            "last_used_at": _utc(t.last_used_at),
        }
        for t in _with_app(options, lambda app: app.list_tokens())
    ]
    _print(rows, output, ("name", "scope", "created_at", "last_used_at"))


@token.command("revoke")
@click.argument("name")
@store_options
def token_revoke(name: str, **options: Any) -> None:
    """Delete the token NAME; servers refuse it within about a second."""
    if not _with_app(options, lambda app: app.revoke_token(name)):
        fail(f"no token named {name!r}")
    click.echo(f"revoked token {name!r}")


def _utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


if __name__ == "__main__":
    main()
