"""The bare limit: one-row INSERT commits in a loop, with no job system at all.

On SQLite a WAL file at the synchronous level of BENCH's JOBHANDLER_SQLITE_SYNCHRONOUS (FULL by
default, like ours); on PostgreSQL psycopg on one connection, a commit per row. Bulk: one
transaction per batch through executemany. Nothing runs the rows: no worker.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import psycopg

from bench.adapters.common import env

PACKAGE = "psycopg"
WORKERS = "none: a loop of one-row commits"

_TABLE = "CREATE TABLE IF NOT EXISTS bare (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)"


def worker_launches() -> int:
    return 0


def worker_argv(index: int) -> list[str]:
    return []  # never launched: worker_launches() is 0


def _sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(env("BENCH_DB_URL").removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    level = os.environ.get("JOBHANDLER_SQLITE_SYNCHRONOUS", "FULL")
    conn.execute(f"PRAGMA synchronous = {level}")
    return conn


def setup() -> None:
    if env("BENCH_BACKEND") == "sqlite":
        _sqlite().execute(_TABLE)
    else:
        with psycopg.connect(env("BENCH_DB_URL"), autocommit=True) as conn:
            conn.execute(_TABLE)


class Submitter:
    def open(self) -> None:
        self.sqlite = env("BENCH_BACKEND") == "sqlite"
        self.conn: Any = _sqlite() if self.sqlite else psycopg.connect(env("BENCH_DB_URL"))
        self.sql = "INSERT INTO bare VALUES (%s, %s)".replace("%s", "?" if self.sqlite else "%s")
        self.next = 0

    def _rows(self, markers: list[int]) -> list[tuple[int, str]]:
        first, self.next = self.next, self.next + len(markers)
        return [(first + k, f'{{"i": {m}}}') for k, m in enumerate(markers)]

    def one(self, i: int) -> None:
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(self.sql, self._rows([i])[0])
            self.conn.execute("COMMIT")
        else:
            self.conn.execute(self.sql, self._rows([i])[0])
            self.conn.commit()

    def many(self, markers: list[int]) -> None:
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(self.sql, self._rows(markers))
            self.conn.execute("COMMIT")
        else:
            with self.conn.cursor() as cur:
                cur.executemany(self.sql, self._rows(markers))
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()
