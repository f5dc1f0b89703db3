"""Whether a Django task's job can join the current ``transaction.atomic()`` block.

It can when Django's default database is the store's own database (the same SQLite file, or
the same PostgreSQL database through psycopg 3): the job is then written on Django's own
connection, inside its transaction, and exists only if that transaction commits. Otherwise
(no atomic block, another database, or a driver the store cannot write through, psycopg2) the
job is committed at once in the store's own transaction, as before: one that must not outlive
a rollback is enqueued from ``transaction.on_commit`` by the caller (docs/transactions.md).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from jobhandler.settings import Settings
from jobhandler.store import sqlite_path


def joined_connection(settings: Settings) -> Any:
    """Django's DB-API connection to join, or None to commit the job on its own."""
    from django.db import DEFAULT_DB_ALIAS, connections  # type: ignore[import-untyped, unused-ignore]

    django_db = connections[DEFAULT_DB_ALIAS]
    if not django_db.in_atomic_block or not _same_database(django_db, settings.database_url):
        return None
    django_db.ensure_connection()
    raw = django_db.connection
    return raw if isinstance(raw, sqlite3.Connection | psycopg.Connection) else None


def _same_database(django_db: Any, url: str) -> bool:
    given = django_db.settings_dict
    if django_db.vendor == "sqlite" and url.startswith("sqlite"):
        name, path = str(given.get("NAME") or ""), sqlite_path(url)
        return bool(name) and os.path.exists(name) and os.path.samefile(name, path)
    if django_db.vendor == "postgresql" and url.startswith(("postgres://", "postgresql://")):
        ours = conninfo_to_dict(url)
        same_port = str(given.get("PORT") or "5432") == str(ours.get("port") or "5432")
        return bool(given.get("NAME") == ours.get("dbname") and same_port)
    return False
