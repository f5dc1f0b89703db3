"""Stores: where jobs live. ``open_store`` picks one from a database URL."""

from __future__ import annotations

from jobhandler.settings import Settings, database_url
from jobhandler.store.contract import Store


def open_store(settings: Settings) -> Store:
    """The store a database URL names (``settings.database_url`` says which URLs are)."""
    url = settings.database_url
    if url.startswith("postgresql://"):
        from jobhandler.store.postgres.dialect import PostgresStore

        return PostgresStore(
            url, listen=settings.listen, task_connections=settings.task_connections
        )
    from jobhandler.store.sqlite.dialect import SQLiteStore

    return SQLiteStore(
        sqlite_path(url),
        synchronous=settings.sqlite_synchronous,
        reserve_bytes=settings.sqlite_reserve_bytes,
    )


def sqlite_path(url: str) -> str:
    """``sqlite:///jobs.db`` is relative, ``sqlite:////var/jobs.db`` absolute."""
    canonical = database_url(url)
    if not canonical.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {url!r}")
    return canonical.removeprefix("sqlite:///")


__all__ = ["Store", "open_store"]
