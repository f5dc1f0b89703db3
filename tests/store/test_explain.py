"""Every listing and count reads an index, on both stores: the plans, over a filled table.

SQLite is left unanalysed, as a store is in use (nothing runs ANALYZE); PostgreSQL is analysed,
as autovacuum would have. A plan that reads the whole jobs table (a scan without an index, or
a sort of every match) is what makes a page slow once the store holds millions of jobs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from jobhandler.model.jobs import JobStatus
from jobhandler.model.records import JobFilter
from jobhandler.store.postgres.dialect import PostgresDialect
from jobhandler.store.rows import list_query, sized_columns
from jobhandler.store.sqlite.dialect import SQLiteDialect
from tests.conftest import fresh_pg_database, migrate

N = 20_000
NOW = 1_900_000_000.0
# Spread over statuses, queues and tasks like a store that has run for a while: mostly done.
FILL = """
INSERT INTO jobs (id, task, queue, payload, status, max_attempts, attempt, run_at,
    created_at, updated_at, finished_at)
SELECT 'j' || n, 't' || (n % 7), 'q' || (n % 5), '{}',
    CASE WHEN n % 10 < 7 THEN 'completed' WHEN n % 10 = 7 THEN 'failed'
         WHEN n % 10 = 8 THEN 'queued' ELSE 'processing' END,
    3, 1, NOW_ - n, NOW_ - n, NOW_ - n,
    CASE WHEN n % 10 < 8 THEN NOW_ - n END
FROM SERIES_;
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome)
SELECT id, 1, 'w', created_at, finished_at, status FROM jobs WHERE finished_at IS NOT NULL;
"""
SQLITE_SERIES = (
    f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {N})"
    " SELECT n FROM s)"
)
PG_SERIES = f"generate_series(1, {N}) AS n"

FILTERS = {
    "all": JobFilter(),
    "status": JobFilter(statuses=frozenset({JobStatus.FAILED})),
    "queue": JobFilter(queue="q1"),
    "task": JobFilter(task="t3"),
    "status+queue": JobFilter(statuses=frozenset({JobStatus.COMPLETED}), queue="q2"),
    # What a token bound to a tenant lists (docs/tenants.md): its key's jobs alone.
    "key": JobFilter(concurrency_key="acme"),
    "status+key": JobFilter(statuses=frozenset({JobStatus.QUEUED}), concurrency_key="acme"),
}


def fill(series: str) -> str:
    return FILL.replace("NOW_", str(NOW)).replace("SERIES_", series)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("explain") / "jobs.db"
    migrate(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    conn.executescript(fill(SQLITE_SERIES))
    # Rows written by hand are counted as the store counts its own inserts (migration 012).
    ids = json.dumps([f"j{n}" for n in range(1, N + 1)])
    conn.execute(SQLiteDialect.queries["count_inserted"].text, {"ids": ids})
    conn.commit()
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_db() -> Iterator[psycopg.Connection[Any]]:
    with fresh_pg_database() as url:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(fill(PG_SERIES))
            conn.execute("VACUUM ANALYZE")  # as autovacuum would have
            yield conn


def sqlite_plan(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> str:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(str(row[3]) for row in rows)


def pg_plan(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> str:
    rows = conn.execute("EXPLAIN " + sql, params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def assert_sqlite_indexed(plan: str, *, ordered_scan: bool = False, sorts: bool = False) -> None:
    for line in plan.splitlines():
        if line.startswith("SCAN jobs") and not ordered_scan:
            raise AssertionError(f"reads the whole table:\n{plan}")
    # Every match sorted (instead of read in index order up to the limit): the whole set read.
    assert sorts or "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


def assert_pg_indexed(plan: str) -> None:
    assert "Seq Scan on jobs" not in plan, plan
    assert "Seq Scan on job_attempts" not in plan, plan


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("cursor", [None, "15000"])
def test_sqlite_listings_read_an_index(
    sqlite_db: sqlite3.Connection, name: str, cursor: str | None
) -> None:
    sql, params = list_query(
        FILTERS[name], 50, cursor, False, sized_columns(SQLiteDialect.byte_length.format)
    )
    # Newest first with no filter: the table itself in seq order, stopped at the limit.
    assert_sqlite_indexed(sqlite_plan(sqlite_db, sql, params), ordered_scan=name == "all")


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("cursor", [None, "15000"])
def test_postgres_listings_read_an_index(
    pg_db: psycopg.Connection[Any], name: str, cursor: str | None
) -> None:
    sql, params = list_query(
        FILTERS[name], 50, cursor, False, sized_columns(PostgresDialect.byte_length.format)
    )
    assert_pg_indexed(pg_plan(pg_db, PostgresDialect.native(sql), params))


COUNTS: dict[str, dict[str, Any]] = {
    "job_counts": {},
    "oldest_waiting": {"queue": "q3"},
    "throughput": {"since": NOW - 3600},
    "job_attempts": {"id": "j5"},
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_sqlite_counts_read_an_index(sqlite_db: sqlite3.Connection, name: str) -> None:
    plan = sqlite_plan(sqlite_db, SQLiteDialect.queries[name].text, COUNTS[name])
    # Throughput groups the last hour's minutes: a sort of what the index range gave.
    assert_sqlite_indexed(plan, sorts=name == "throughput")
    assert "SCAN job_attempts" not in plan, plan
    if name == "oldest_waiting":
        assert "jobs_due" in plan, plan
    if name == "throughput":
        assert "COVERING INDEX jobs_finished" in plan, plan


@pytest.mark.parametrize("name", list(COUNTS))
def test_postgres_counts_read_an_index(pg_db: psycopg.Connection[Any], name: str) -> None:
    plan = pg_plan(pg_db, PostgresDialect.queries[name].text, COUNTS[name])
    assert_pg_indexed(plan)
    if name == "oldest_waiting":
        assert "jobs_due" in plan, plan
    if name == "throughput":
        assert "Index Only Scan using jobs_finished" in plan, plan


def test_counts_stay_small_whatever_the_table_holds(
    sqlite_db: sqlite3.Connection, pg_db: psycopg.Connection[Any]
) -> None:
    # Counted as the rows went in: a row per queue on SQLite, a row per queue
    # and status on PostgreSQL; not a row per job.
    queues = "SELECT count(DISTINCT queue) FROM jobs"
    every = "queued + scheduled + processing + completed + failed + cancelled"
    kept = f"SELECT count(*), sum({every}) FROM queue_counts"
    assert sqlite_db.execute(kept).fetchone() == (sqlite_db.execute(queues).fetchone()[0], N)
    groups = pg_db.execute("SELECT count(*) FROM (SELECT DISTINCT queue, status FROM jobs) AS g")
    row = groups.fetchone()
    assert row is not None
    assert pg_db.execute("SELECT count(*), sum(n) FROM job_counts").fetchone() == (row[0], N)


# A search: an id prefix reads a range of the unique index on id in its own order; a text
# search reads a window of the newest jobs of the other filters through their index.
SEARCHES = {
    "id prefix": JobFilter(id_prefix="j1234"),
    "id prefix+status": JobFilter(id_prefix="j1234", statuses=frozenset({JobStatus.FAILED})),
    "text+queue": JobFilter(search="boom", queue="q1"),
    "text+status": JobFilter(search="boom", statuses=frozenset({JobStatus.FAILED})),
}


@pytest.mark.parametrize("name", list(SEARCHES))
def test_sqlite_searches_read_an_index(sqlite_db: sqlite3.Connection, name: str) -> None:
    where = SEARCHES[name]
    sql, params = list_query(
        where, 50, None, False, sized_columns(SQLiteDialect.byte_length.format)
    )
    plan = sqlite_plan(sqlite_db, sql, params)
    # The outer query sorts the window's rows: at most SEARCH_WINDOW, never the table.
    assert_sqlite_indexed(plan, sorts=True)
    if where.id_prefix:
        assert "INDEX sqlite_autoindex_jobs" in plan and "(id>? AND id<?)" in plan, plan
    else:
        assert "INDEX jobs_" in plan, plan


@pytest.mark.parametrize("name", list(SEARCHES))
def test_postgres_searches_read_an_index(pg_db: psycopg.Connection[Any], name: str) -> None:
    where = SEARCHES[name]
    sql, params = list_query(
        where, 50, None, False, sized_columns(PostgresDialect.byte_length.format)
    )
    plan = pg_plan(pg_db, PostgresDialect.native(sql), params)
    assert_pg_indexed(plan)
    if where.id_prefix:
        assert "Index Scan Backward using jobs_id_key" in plan, plan


# A batch of workflow parents' outcomes asks whether one of their children came due
# (wake_workers). In a fan-in of thousands, the due jobs are mostly the parents themselves, and
# the statistics may date from before they were stored: joined by status, the child was looked
# for among all of them, for each batch (4.7 ms of a 6 ms batch at 10,000).
PARENTS = [f"j{n}" for n in range(1, 51)]


def test_postgres_wake_check_reads_children_by_id(pg_db: psycopg.Connection[Any]) -> None:
    with pg_db.transaction(force_rollback=True):
        pg_db.execute("UPDATE jobs SET status = 'completed' WHERE status <> 'completed'")
        pg_db.execute("ANALYZE jobs")  # statistics from before the fan-in: nothing due
        pg_db.execute("UPDATE jobs SET status = 'queued' WHERE seq % 2 = 0")
        pg_db.execute(
            "INSERT INTO job_deps (parent_id, child_id) SELECT p, 'j2' FROM unnest(%s::text[]) p",
            (PARENTS,),
        )
        pg_db.execute("ANALYZE job_deps")
        query = PostgresDialect.queries["wake_workers"].text
        plan = pg_plan(pg_db, query, {"parents": PARENTS})
    assert_pg_indexed(plan)
    assert "jobs_status_seq" not in plan and "jobs_due" not in plan, plan
    assert "jobs_id_key" in plan, plan
