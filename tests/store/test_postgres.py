"""What only the PostgreSQL store does: migrations racing, the claim's plan, wake-ups, lost
connections and the lease clock. Each test gets its own fresh database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest

from jobhandler.model.clock import skew_of
from jobhandler.model.errors import StoreUnavailable
from jobhandler.model.jobs import NewJob
from jobhandler.store import migrations
from jobhandler.store.dialect import Step
from jobhandler.store.postgres.dialect import CLAIM_SQL, LISTENER_NAME, PostgresStore
from jobhandler.store.queries import Query

NOW = 1_900_000_000.0
LEASE = 30.0


def new_job(run_at: float = NOW) -> NewJob:
    return NewJob(
        id=str(uuid.uuid4()),
        task="t",
        queue="default",
        payload=None,
        priority=0,
        max_attempts=3,
        timeout=None,
        run_at=run_at,
    )


async def sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    """Run one statement on a connection of its own (the test's view from outside the store)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def terminate_backends(url: str) -> int:
    """Kill every other session on the test database, as a failover or an admin would."""
    rows = await sql(
        url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    return int(rows[0][0])  # type: ignore[call-overload]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(0.02)


async def test_many_processes_migrating_at_once_agree(pg_database_url: str) -> None:
    stores = [PostgresStore(pg_database_url) for _ in range(8)]
    try:
        await asyncio.gather(*(s.migrate() for s in stores))
        latest = migrations.load("postgres")[-1].version
        assert [await s.schema_version() for s in stores] == [latest] * 8
        versions = await sql(pg_database_url, "SELECT version FROM schema_version ORDER BY 1")
        assert versions == [(m.version,) for m in migrations.load("postgres")]
    finally:
        for s in stores:
            await s.close()


async def test_claim_reads_the_partial_index_among_100k_finished_jobs(
    pg: PostgresStore, pg_database_url: str
) -> None:
    await sql(
        pg_database_url,
        "INSERT INTO jobs (id, task, queue, payload, status, max_attempts, attempt, run_at,"
        " created_at, updated_at, finished_at)"
        " SELECT 'done-' || n, 't', 'q' || mod(n, 5), '{}', 'completed', 3, 1, t, t, t, t"
        " FROM generate_series(1, 100000) AS n, (SELECT %s::float8 AS t) AS now",
        NOW,
    )
    await pg.insert_jobs([new_job() for _ in range(20)], NOW)
    await sql(pg_database_url, "ANALYZE jobs")
    params = {"queues": ["default", "q1"], "now": NOW, "limit": 10, "worker": "w", "lease_until": 0}
    async with await psycopg.AsyncConnection.connect(pg_database_url) as conn:
        cur = await conn.execute("EXPLAIN " + CLAIM_SQL, params)
        plan = "\n".join(str(row[0]) for row in await cur.fetchall())
    assert "jobs_due" in plan, plan
    assert "Seq Scan on jobs" not in plan, plan
    # And the claim still takes what is due, however many finished jobs lie beside it.
    assert len(await pg.claim_jobs(["default", "q1"], "w", 50, NOW, LEASE)) == 20


async def test_listen_wakes_on_submit_and_cancel_and_survives_a_dropped_connection(
    pg: PostgresStore, pg_database_url: str
) -> None:
    submitted = asyncio.Event()
    cancelled: asyncio.Queue[str] = asyncio.Queue()
    stop = await pg.listen(submitted.set, cancelled.put_nowait)
    other = PostgresStore(pg_database_url)  # another process, writing
    try:
        # The listener calls on_submit once it is listening (anything earlier went unheard).
        await asyncio.wait_for(submitted.wait(), 10)
        submitted.clear()
        await other.insert_jobs([new_job(), new_job()], NOW)
        await asyncio.wait_for(submitted.wait(), 10)

        (job,) = await other.claim_jobs(["default"], "w1", 1, NOW, LEASE)
        await other.request_cancel(job.id, NOW)
        assert await asyncio.wait_for(cancelled.get(), 10) == job.id

        # Drop the listener's connection: it reconnects, says so with a wake-up, and listens.
        submitted.clear()
        assert await terminate_backends(pg_database_url) >= 1
        await asyncio.wait_for(submitted.wait(), 20)
        submitted.clear()
        await other.insert_jobs([new_job()], NOW)
        await asyncio.wait_for(submitted.wait(), 10)
        (job,) = await other.claim_jobs(["default"], "w1", 1, NOW, LEASE)
        await other.request_cancel(job.id, NOW)
        assert await asyncio.wait_for(cancelled.get(), 10) == job.id
    finally:
        await stop()
        await other.close()

    async def listener_gone() -> bool:
        rows = await sql(
            pg_database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            LISTENER_NAME,
        )
        return rows == [(0,)]

    await eventually(listener_gone)


async def test_listen_off_delivers_nothing(pg_database_url: str) -> None:
    on, off = PostgresStore(pg_database_url), PostgresStore(pg_database_url, listen=False)
    await on.migrate()
    heard_on, heard_off = asyncio.Event(), asyncio.Event()
    stops = [
        await s.listen(heard.set, lambda job_id: None)
        for s, heard in ((on, heard_on), (off, heard_off))
    ]
    try:
        await asyncio.wait_for(heard_on.wait(), 10)  # connected
        heard_on.clear()
        await off.insert_jobs([new_job()], NOW)  # NOTIFY still goes out with listen off
        await asyncio.wait_for(heard_on.wait(), 10)
        assert not heard_off.is_set()
    finally:
        for stop in stops:
            await stop()
        await on.close()
        await off.close()


async def test_killed_connections_raise_store_unavailable_then_the_store_answers_again(
    pg: PostgresStore, pg_database_url: str
) -> None:
    job = new_job()
    await pg.insert_jobs([job], NOW)
    async with await psycopg.AsyncConnection.connect(pg_database_url) as locker:
        # Hold the job's row so the store's cancel is mid-statement when its session dies.
        await locker.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (job.id,))
        cancel = asyncio.create_task(pg.request_cancel(job.id, NOW))

        async def cancel_is_waiting() -> bool:
            rows = await sql(
                pg_database_url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'",
            )
            return rows == [(1,)]

        await eventually(cancel_is_waiting)
        await sql(
            pg_database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        with pytest.raises(StoreUnavailable):
            await cancel
        await locker.rollback()

    # Every idle pooled connection dies too; once the server has closed them, the next calls
    # get fresh ones (a checkout sees a closed socket without a round trip).
    pooled = await sql(
        pg_database_url,
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert await terminate_backends(pg_database_url) >= 1

    async def sessions_closed() -> bool:  # those sessions, not any the pool opens since
        rows = await sql(
            pg_database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
            [pid for (pid,) in pooled],
        )
        return rows == [(0,)]

    await eventually(sessions_closed)
    await pg.ping()
    cancelled = await pg.request_cancel(job.id, NOW + 1)
    assert cancelled.status == "cancelled"


async def test_an_unreachable_database_fails_fast_and_the_store_recovers(
    pg: PostgresStore, pg_database_url: str
) -> None:
    name = pg_database_url.rsplit("/", 1)[1]
    admin_url = pg_database_url.rsplit("/", 1)[0] + "/postgres"
    # An outage of this one database: new sessions refused, current ones cut.
    await sql(admin_url, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    await sql(
        admin_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
        name,
    )
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await pg.claim_jobs(["default"], "w1", 1, NOW, LEASE)
        assert time.monotonic() - started < 8  # the pool's 5 s timeout, not a hang
    finally:
        await sql(admin_url, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

    async def answers() -> bool:
        try:
            await pg.ping()
        except StoreUnavailable:
            return False
        return True

    await eventually(answers, timeout=30)
    await pg.insert_jobs([new_job()], NOW)
    assert len(await pg.claim_jobs(["default"], "w1", 1, NOW, LEASE)) == 1


def slow_clock() -> float:
    """The clock of a host that runs two minutes slow."""
    return time.time() - 120


@pytest.fixture
async def drifted(pg_database_url: str, pg: PostgresStore) -> AsyncIterator[PostgresStore]:
    """A store on the ``pg`` database, as a host whose clock runs slow would open it."""
    store = PostgresStore(pg_database_url, host_clock=slow_clock)
    try:
        yield store
    finally:
        await store.close()


async def test_a_host_whose_clock_runs_slow_measures_how_far(drifted: PostgresStore) -> None:
    """What a connected App adds to its host's clock (model/clock.py); the end-to-end proof,
    with worker processes whose clocks really are off, is tests/acceptance/test_clock_skew.py."""
    assert drifted.skew() == 0.0  # nothing measured before a connection
    await drifted.ping()
    assert drifted.skew() == 120.0


async def test_a_missing_table_is_a_bug_not_an_outage(
    pg_database_url: str, pg: PostgresStore
) -> None:
    await sql(pg_database_url, "DROP TABLE workers")
    with pytest.raises(psycopg.errors.UndefinedTable):
        await pg.list_workers()
    await pg.ping()  # the store still answers


def test_a_skew_within_a_second_and_the_measures_uncertainty_counts_as_none() -> None:
    assert skew_of(0.6, 0.002) == 0.0  # a host in sync, or nearly
    assert skew_of(1.4, 1.0) == 0.0  # a slow round trip under load: as likely 0.9 as 1.9
    assert skew_of(-30.2, 0.002) == -30.0
    assert skew_of(120.4, 0.5) == 120.0


async def test_both_ends_of_a_connection_keep_it_alive_so_a_vanished_host_is_found(
    pg: PostgresStore,
) -> None:
    """A host cut off mid-transaction must not hold its locks for the kernel's two hours, nor
    wait that long for an answer (the user timeout: tests/chaos/test_api_partition.py)."""
    show = Query(
        "show",
        "SELECT current_setting('tcp_keepalives_idle') AS idle,"
        " current_setting('tcp_keepalives_count') AS count,"
        " current_setting('tcp_user_timeout') AS user_timeout",
    )
    (done,) = await pg.dialect.run([Step(show, {})], False)
    assert done.rows == [{"idle": "10", "count": "3", "user_timeout": "5000"}]
