"""jobhandler.testing and its pytest plugin, used as a user would: an example test suite run by
pytester, and the async helper in this process."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from jobhandler import App, JobContext, JobFailed, JobStatus, PermanentFailure
from jobhandler.testing import connected

pytest_plugins = ["pytester"]

SHOP = """
from pydantic import BaseModel

from jobhandler import App, JobContext

app = App()


class Order(BaseModel):
    email: str
    total: float


@app.task(queue="mail")
def send_receipt(order: Order) -> str:
    return f"sent to {order.email}"


@app.task
async def flaky(n: int, ctx: JobContext) -> int:
    if ctx.attempt < 3:
        raise RuntimeError("not yet")
    return n


def place_order(email: str, total: float):
    return send_receipt.enqueue_sync(Order(email=email, total=total))
"""

TEST_SHOP = """
import pytest

from shop import Order, flaky, place_order, send_receipt


def test_an_order_sends_a_receipt(jobhandler):
    place_order("ann@example.test", 9.5)
    order = Order(email="ann@example.test", total=9.5)
    jobhandler.assert_enqueued(send_receipt, order, queue="mail")
    jobhandler.assert_not_enqueued(flaky)
    [job] = jobhandler.drain_sync()
    assert job.status == "completed" and job.result == "sent to ann@example.test"
    assert jobhandler.drain_sync() == []


@pytest.mark.jobhandler(eager=True)
def test_eager_mode_runs_each_job_as_it_is_enqueued(jobhandler):
    job = place_order("bob@example.test", 1)
    assert job.status == "completed"
    assert job.get_result_sync() == "sent to bob@example.test"


def test_drain_with_scheduled_runs_the_retries_too(jobhandler):
    job = flaky.enqueue_sync(7)
    assert [j.status for j in jobhandler.drain_sync()] == ["scheduled"]
    runs = jobhandler.drain_sync(with_scheduled=True)
    assert [j.status for j in runs] == ["scheduled", "completed"]
    assert job.get_result_sync(timeout=0) == 7


def test_a_failed_assertion_says_what_was_enqueued(jobhandler):
    flaky.enqueue_sync(1)
    wanted = r"expected 2 'flaky' jobs, found 1; enqueued: \\[\\('flaky', 1\\)\\]"
    with pytest.raises(AssertionError, match=wanted):
        jobhandler.assert_enqueued("flaky", count=2)


def test_each_test_has_a_fresh_store(jobhandler_app, jobhandler):
    assert jobhandler_app.run_sync(jobhandler_app.service.jobs.page()).jobs == []
"""


def test_the_plugin_serves_an_example_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(shop=SHOP, test_shop=TEST_SHOP)
    pytester.makeini("[pytest]\njobhandler_app = shop:app\n")
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=5)


def test_without_an_app_the_fixture_says_how_to_name_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(jobhandler):\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set jobhandler_app = 'module:attribute'*"])


class Receipt(BaseModel):
    email: str
    total: float


async def test_async_tests_get_typed_results_and_real_outcomes() -> None:
    app = App()

    @app.task
    async def receipt(email: str, ctx: JobContext) -> Receipt:
        ctx.progress({"step": "rendered"})
        return Receipt(email=email, total=2.5)

    @app.task(max_attempts=5)
    def refuse(n: int) -> None:
        raise PermanentFailure(f"no {n}")

    async with connected(app) as jobs:
        submits = app.service.submits
        job = await receipt.enqueue("ann@example.test")
        bad = await refuse.enqueue(3)
        assert {j.id: j.status for j in await jobs.drain()} == {
            job.id: JobStatus.COMPLETED,
            bad.id: JobStatus.FAILED,
        }
        assert await job.get_result(timeout=0) == Receipt(email="ann@example.test", total=2.5)
        assert jobs.progress[job.id] == {"step": "rendered"}
        with pytest.raises(JobFailed, match="failed: no 3"):
            await bad.get_result(timeout=0)
        jobs.eager = True
        assert (await refuse.enqueue(4)).status is JobStatus.FAILED  # one attempt: permanent
    assert "insert" not in vars(submits)  # the service is left as it was


async def test_the_kit_runs_a_task_that_completes_in_its_transaction() -> None:
    """ctx.transaction() works in the kit's runs too, on its store (a temporary SQLite file)."""
    app = App()

    @app.task
    async def record(n: int, ctx: JobContext) -> int:
        async with ctx.transaction(result=n * 2) as conn:
            conn.execute("INSERT INTO seen (job_id) VALUES (?)", (ctx.job_id,))
        return 0  # not stored: the job completed at the commit

    async with connected(app) as kit:
        async with app.service.store.transaction() as conn:
            conn.execute("CREATE TABLE seen (job_id TEXT)")
        handle = await record.enqueue(21)
        (done,) = await kit.drain()
        assert done.status is JobStatus.COMPLETED and done.result == 42
        async with app.service.store.transaction() as conn:
            rows = conn.execute("SELECT job_id FROM seen").fetchall()
        assert [row[0] for row in rows] == [handle.id]
