"""The caller's connections a submit may join (``enqueue(..., connection=conn)``), as a type."""

from __future__ import annotations

import sqlite3
from typing import Any, TypeAlias

from psycopg import AsyncConnection, Connection

from jobhandler.model.options import EnqueueOptions

# A caller's open connection to the store's database, whose transaction a submit joins: psycopg
# (async or blocking) on PostgreSQL, sqlite3 to the same file on SQLite.
CallerConnection: TypeAlias = AsyncConnection[Any] | Connection[Any] | sqlite3.Connection


class SyncEnqueueOptions(EnqueueOptions, total=False):
    """``enqueue_sync``'s options: those of ``enqueue``, and the caller's connection."""

    connection: CallerConnection | None
