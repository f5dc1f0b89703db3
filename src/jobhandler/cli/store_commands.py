"""Commands that work on a store directly, with no server: migrate, store copy, backup and
restore."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from typing import Any

import click

from jobhandler.cli.options import build_settings, setting_options
from jobhandler.model.errors import StoreUnavailable
from jobhandler.model.redact import redact
from jobhandler.process.entry import EXIT_UNREACHABLE, fail
from jobhandler.service.transfer import TransferRefused, copy_jobs
from jobhandler.settings import Settings
from jobhandler.store import open_store, sqlite_path
from jobhandler.store.sqlite.backup import BackupRefused, backup, restore


@click.command()
@setting_options("store")
def migrate(**options: Any) -> None:
    """Create or upgrade the store's schema."""
    settings = build_settings(options)

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


@click.group()
def store() -> None:
    """Operate on stores directly."""


@store.command("copy")
@click.option("--from", "source_url", required=True, help="The store to copy from.")
@click.option("--to", "target_url", required=True, help="An empty store to copy into.")
def store_copy(source_url: str, target_url: str) -> None:
    """Copy every job (queued work and history) from one store into another."""
    source_settings = build_settings({"database_url": source_url})
    target_settings = build_settings({"database_url": target_url})
    source_url = source_settings.database_url  # as the one parser wrote it (settings.py)
    if source_url.startswith("sqlite:") and not os.path.exists(sqlite_path(source_url)):
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
        fail(f"refused: {exc}")  # bad input, as other usage errors (exit 2)
    except StoreUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    click.echo(f"copied {copied} jobs")


@store.command("backup")
@setting_options("store")
@click.argument("file", type=click.Path(dir_okay=False))
def store_backup(file: str, **options: Any) -> None:
    """Copy a live SQLite store into FILE, a new file, while it serves and works."""
    settings = build_settings(options)
    path = _sqlite_store(settings, "backup")
    try:
        copied = backup(path, file)
    except BackupRefused as exc:
        fail(f"refused: {exc}")
    except sqlite3.OperationalError as exc:  # locked past the busy timeout, unreadable...
        fail(f"{path}: {exc}", EXIT_UNREACHABLE)
    click.echo(f"backed up {copied.jobs} jobs to {copied.path} ({copied.bytes} bytes)")


@store.command("restore")
@setting_options("store")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite a store that holds jobs.")
def store_restore(file: str, replace: bool, **options: Any) -> None:
    """Make the SQLite store a copy of the backup FILE; refused while any process has it open."""
    settings = build_settings(options)
    path = _sqlite_store(settings, "restore")
    try:
        copied = restore(file, path, replace)
    except BackupRefused as exc:
        fail(f"refused: {exc}")
    click.echo(f"restored {copied.jobs} jobs into {copied.path}")


def _sqlite_store(settings: Settings, action: str) -> str:
    if not settings.database_url.startswith("sqlite:"):
        fail(
            f"store {action} works on a SQLite store; for PostgreSQL use pg_dump and pg_restore"
            " (docs/reliability.md, 'Backup and restore')"
        )
    return sqlite_path(settings.database_url)


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


COMMANDS = (migrate, store)
