"""Typed tasks: mypy rejects a wrong payload or option at the call, and so does the runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_type_hints

import pytest

from jobhandler import App, InvalidOptions, JobHandlerError
from jobhandler.model.options import EnqueueOptions, JobOptions
from tests.typing.check import mypy_errors

SAMPLE = Path(__file__).parents[2] / "typing" / "sample.py"


def test_mypy_flags_the_wrong_calls_and_only_those() -> None:
    reported, expected, out = mypy_errors(SAMPLE)
    assert reported == expected, out


def test_enqueue_keywords_are_the_job_options() -> None:
    # EnqueueOptions repeats JobOptions's fields for the type checker: they must not drift.
    assert set(get_type_hints(EnqueueOptions)) == set(JobOptions.model_fields)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prioity": 3}, "invalid option prioity: unknown option (the options are "),
        ({"priority": "high"}, "invalid option priority: "),
        ({"delay": 1, "run_at": 2_000_000_000}, "give either delay or run_at, not both"),
    ],
)
async def test_a_wrong_option_is_a_clear_jobhandler_error(
    options: dict[str, Any], message: str
) -> None:
    app = App()

    @app.task
    async def crunch(n: int) -> float:
        return n / 2

    with pytest.raises(InvalidOptions) as caught:
        await crunch.enqueue(5, **options)  # refused before any store is needed
    assert isinstance(caught.value, JobHandlerError)
    assert message in str(caught.value)
