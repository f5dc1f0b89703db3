"""Typed tasks: mypy rejects a wrong payload or option at the call, and so does the runtime."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from mypy import api as mypy_api

from jobhandler import App, InvalidOptions, JobHandlerError
from jobhandler.model.options import EnqueueOptions, JobOptions

SAMPLE = Path(__file__).parents[2] / "typing" / "sample.py"
EXPECTED = re.compile(r"#\s*E:\s*([\w-]+)\s*$")
REPORTED = re.compile(r"^.*sample\.py:(\d+): error: .*\[([\w-]+)\]$")


def expected_errors() -> set[tuple[int, str]]:
    lines = SAMPLE.read_text().splitlines()
    return {(n, m[1]) for n, line in enumerate(lines, 1) if (m := EXPECTED.search(line))}


def test_mypy_flags_the_wrong_calls_and_only_those() -> None:
    # Only the sample is checked (imports are read, not reported); the cache outlives the run,
    # so a second run takes about a second.
    cache = Path(tempfile.gettempdir()) / "jobhandler-typing-mypy-cache"
    out, err, _ = mypy_api.run(
        ["--strict", "--follow-imports=silent", "--cache-dir", str(cache), str(SAMPLE)]
    )
    reported = {(int(m[1]), m[2]) for line in out.splitlines() if (m := REPORTED.match(line))}
    assert not err
    assert reported == expected_errors(), out


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
