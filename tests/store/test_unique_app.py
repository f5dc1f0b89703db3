"""Unique keys through the Python API, and the pruner forgetting old keys, on both stores."""

from __future__ import annotations

import pytest

from jobhandler import App, SubmitRequest
from jobhandler.model.errors import InvalidOptions
from jobhandler.service.submits import IdempotencyKey
from jobhandler.settings import Settings
from jobhandler.worker.maintenance import Pruner

NOW = 1_900_000_000.0


async def test_enqueue_reports_duplicates_and_the_pruner_forgets_keys(database_url: str) -> None:
    clock = [NOW]
    app = App(default_task="echo", clock=lambda: clock[0])

    @app.task
    async def echo(text: str) -> str:
        return text

    settings = Settings(database_url=database_url, keep_idempotency_keys=60)
    async with app.connected(settings):
        first = await echo.enqueue("a", unique_key="k")
        again = await echo.enqueue("b", unique_key="k")
        assert not first.duplicate and again.duplicate and again.id == first.id
        many = await echo.enqueue_many(["c", "d"], unique_key="m", unique_for=30)
        assert [h.duplicate for h in many] == [False, True] and many[1].id == many[0].id
        with pytest.raises(InvalidOptions):
            await echo.enqueue("x", unique_for=5)  # type: ignore[call-overload]

        key = IdempotencyKey("anonymous", "req", "fingerprint")
        request = SubmitRequest(payload="e")
        made = await app.service.submits.submit_checked(
            lambda t: [app.service.submits.new_job(request, t)], batch=False, key=key
        )
        assert made.status == 201 and not made.replayed
        clock[0] += 61  # past the retention and the window
        await Pruner(app, settings).run_once()
        assert await app.service.store.get_idempotency("anonymous", "req") is None
        later = await echo.enqueue_many(["f"], unique_key="m", unique_for=30)
        assert not later[0].duplicate  # the window ran out
