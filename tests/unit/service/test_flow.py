"""Flow control from Python: rates as written, limits declared in code and checked at once,
and the App's queue methods on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobhandler import App
from jobhandler.model.limits import InvalidLimit
from jobhandler.model.rates import Rate, parse_rate
from jobhandler.settings import Settings


@pytest.mark.parametrize(
    ("text", "rate"),
    [("100/s", Rate(100, 1.0)), ("10/min", Rate(10, 60.0)), (" 5 / hour ", Rate(5, 3600.0))],
)
def test_rates_as_written(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0/s", "fast", "10", "10/day", "-1/s", "1e3/s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate(text)


def test_limits_in_code_are_checked_when_declared() -> None:
    app = App()
    with pytest.raises(InvalidLimit):
        app.queue("emails", rate_limit="lots")

    def job() -> None: ...

    with pytest.raises(InvalidLimit):
        app.task(concurrency=0)(job)
    with pytest.raises(InvalidLimit):
        app.queue("bad name", concurrency=1)


async def test_the_python_api_pauses_limits_and_reports(tmp_path: Path) -> None:
    app = App()
    app.queue("emails", concurrency=5, rate_limit="100/s")

    @app.task(queue="emails", rate_limit="10/min")
    async def send(to: str) -> None: ...

    async with app.connected(Settings(database_url=f"sqlite:///{tmp_path / 'jobs.db'}")):
        await app.service.flow.write_declarations(["emails"], ["send"])  # as a worker does
        (emails,) = await app.service.flow.queue_stats()
        assert (emails.concurrency, emails.rate_limit, emails.paused) == (5, "100/s", False)
        assert not emails.served  # no worker
        assert (await app.service.flow.pause("emails")).paused
        changed = await app.service.flow.update("emails", concurrency=2)
        assert changed.paused and changed.concurrency == 2 and changed.rate_limit == "100/s"
        assert not (await app.service.flow.resume("emails")).paused
        with pytest.raises(InvalidLimit):
            await app.service.flow.update("emails", concurrency=0)
        with pytest.raises(TypeError):
            await app.service.flow.update("emails", speed=1)
        limits = {(f.scope, f.name): f for f in await app.service.store.flow_limits()}
        assert limits["task", "send"].rate_limit == "10/min"
        assert limits["queue", "emails"].concurrency == 2
