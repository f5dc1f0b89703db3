"""Stores: where jobs live. ``open_store`` picks one from a database URL."""

from __future__ import annotations

from jobhandler.settings import Settings
from jobhandler.store.contract import Store


def open_store(settings: Settings) -> Store:
    """The store a database URL names: ``sqlite:///path.db`` (or a bare path), ``postgresql://``."""
    url = settings.database_url
    if url.startswith(("postgresql://", "postgres://")):
        from jobhandler.store.postgres.dialect import PostgresStore

        return PostgresStore(url, listen=settings.listen)
    from jobhandler.store.sqlite.dialect import SQLiteStore

    return SQLiteStore(sqlite_path(url), synchronous=settings.sqlite_synchronous)


def sqlite_path(url: str) -> str:
    """``sqlite:///jobs.db`` is relative, ``sqlite:////var/jobs.db`` absolute, a bare path as is."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        return path[1:] if path.startswith("/") else path
    if "://" in url:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://")
    return url


__all__ = ["Store", "open_store"]
