"""``jobhandler token``: create, list and revoke API tokens in the store, with no server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from jobhandler.app import App
from jobhandler.cli.options import build_settings, setting_options
from jobhandler.cli.output import show, utc
from jobhandler.model.errors import StoreUnavailable
from jobhandler.model.tokens import SCOPES
from jobhandler.process.entry import EXIT_UNREACHABLE, fail

T = TypeVar("T")


@click.group()
def token() -> None:
    """Create, list and revoke API tokens; the store keeps only their hashes.

    Once the store holds any token, every route but /healthz and /readyz needs one. A running
    server sees a new or revoked token within about a second.
    """


def _with_app(options: dict[str, Any], use: Callable[[App], Awaitable[T]]) -> T:
    """Run ``use`` against the store the options name, as ``migrate`` does: no server needed."""
    settings = build_settings(options)

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
@click.option(
    "--concurrency-key",
    metavar="KEY",
    help="Bind it to one tenant: its jobs get this key (another is refused), and it sees and"
    " steers only jobs of this key (docs/tenants.md).",
)
@setting_options("store")
def token_create(scope: str, name: str | None, concurrency_key: str | None, **options: Any) -> None:
    """Create a token. It is printed once, as the last line, and cannot be shown again."""
    try:
        info, secret = _with_app(
            options, lambda app: app.service.tokens.create(scope, name, concurrency_key)
        )
    except ValueError as exc:  # a bad or taken name, a bad key
        fail(str(exc))
    bound = "" if info.concurrency_key is None else f" bound to key {info.concurrency_key!r}"
    click.echo(f"created {info.scope} token {info.name!r}{bound}; it is shown only this once:")
    click.echo(secret)


@token.command("list")
@click.option("-o", "--output", default="table", type=click.Choice(["table", "json"]))
@setting_options("store")
def token_list(output: str, **options: Any) -> None:
    """List tokens: names, scopes, keys, when they were made and last used (never the tokens)."""
    rows = [
        {
            "name": t.name,
            "scope": t.scope,
            "concurrency_key": t.concurrency_key,
            "created_at": utc(t.created_at),
            "last_used_at": utc(t.last_used_at),
        }
        for t in _with_app(options, lambda app: app.service.tokens.all())
    ]
    show(rows, output, ("name", "scope", "concurrency_key", "created_at", "last_used_at"))


@token.command("revoke")
@click.argument("name")
@setting_options("store")
def token_revoke(name: str, **options: Any) -> None:
    """Delete the token NAME; servers refuse it within about a second."""
    if not _with_app(options, lambda app: app.service.tokens.revoke(name)):
        fail(f"no token named {name!r}")
    click.echo(f"revoked token {name!r}")


COMMANDS = (token,)
