"""Processes whose clocks are wrong: run under libfaketime, their whole process (``time.time``
included) reads the host's clock plus a fixed offset. The host's clock and the database's stay
right. Used by tests/acceptance/test_clock_skew.py and the mixed chaos run."""

from __future__ import annotations

from pathlib import Path

LIBFAKETIME = next(
    (
        p
        for p in (
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/faketime/libfaketime.so.1",
        )
        if Path(p).exists()
    ),
    None,
)
WITHOUT_LIBFAKETIME = "libfaketime is not installed (.ci/run installs it)"


def skewed(env: dict[str, str], seconds: int) -> dict[str, str]:
    """``env`` for a process whose clock runs ``seconds`` ahead (negative: behind). The offset
    is written ``+30s`` / ``-30s``, the form tests/apps/chaosapp.py reads back."""
    assert LIBFAKETIME is not None, WITHOUT_LIBFAKETIME
    offset = f"{seconds:+d}s"
    return {**env, "LD_PRELOAD": LIBFAKETIME, "FAKETIME": offset, "FAKETIME_NO_CACHE": "1"}
