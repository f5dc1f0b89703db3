"""Typed clients: mypy sees each method's own parameters and answer on both clients, so a wrong
argument, a misspelt option or a forgotten ``await`` is flagged where it is written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from mypy import api as mypy_api

SAMPLE = Path(__file__).parents[2] / "typing" / "clients_sample.py"
EXPECTED = re.compile(r"#\s*E:\s*([\w-]+)\s*$")
REPORTED = re.compile(r"^.*clients_sample\.py:(\d+): error: .*\[([\w-]+)\]$")


def expected_errors() -> set[tuple[int, str]]:
    lines = SAMPLE.read_text().splitlines()
    return {(n, m[1]) for n, line in enumerate(lines, 1) if (m := EXPECTED.search(line))}


def test_mypy_flags_the_wrong_client_calls_and_only_those() -> None:
    # Only the sample is checked (imports are read, not reported); the cache outlives the run.
    cache = Path(tempfile.gettempdir()) / "jobhandler-typing-mypy-cache"
    out, err, _ = mypy_api.run(
        ["--strict", "--follow-imports=silent", "--cache-dir", str(cache), str(SAMPLE)]
    )
    reported = {(int(m[1]), m[2]) for line in out.splitlines() if (m := REPORTED.match(line))}
    assert not err
    assert reported == expected_errors(), out
    assert len(reported) >= 14  # the sample's wrong calls, each one flagged
