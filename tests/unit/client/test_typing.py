"""Typed clients: mypy sees each method's own parameters and answer on both clients, so a wrong
argument, a misspelt option or a forgotten ``await`` is flagged where it is written."""

from __future__ import annotations

from pathlib import Path

from tests.typing.check import mypy_errors

SAMPLE = Path(__file__).parents[2] / "typing" / "clients_sample.py"


def test_mypy_flags_the_wrong_client_calls_and_only_those() -> None:
    reported, expected, out = mypy_errors(SAMPLE)
    assert reported == expected, out
    assert len(reported) >= 14  # the sample's wrong calls, each one flagged
