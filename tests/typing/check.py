"""Run mypy --strict on a sample file whose wrong lines end in ``# E: <code>``: what mypy reports
and what the sample expects, as (line, error code) pairs."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from mypy import api as mypy_api

EXPECTED = re.compile(r"#\s*E:\s*([\w-]+)\s*$")


def mypy_errors(sample: Path) -> tuple[set[tuple[int, str]], set[tuple[int, str]], str]:
    """Reported and expected errors of ``sample``, and mypy's output. Only the sample is
    checked (imports are read, not reported); the cache outlives the run, so a second run
    takes about a second."""
    cache = Path(tempfile.gettempdir()) / "jobhandler-typing-mypy-cache"
    out, err, _ = mypy_api.run(
        ["--strict", "--follow-imports=silent", "--cache-dir", str(cache), str(sample)]
    )
    assert not err, err
    reported_line = re.compile(rf"^.*{re.escape(sample.name)}:(\d+): error: .*\[([\w-]+)\]$")
    reported = {(int(m[1]), m[2]) for line in out.splitlines() if (m := reported_line.match(line))}
    lines = sample.read_text().splitlines()
    expected = {(n, m[1]) for n, line in enumerate(lines, 1) if (m := EXPECTED.search(line))}
    return reported, expected, out


REPORTED = re.compile(r"^(.+?):(\d+): error: .*\[([\w-]+)\]$")


def mypy_errors_in(files: list[Path], bases: list[Path]) -> tuple[set[tuple[str, int, str]], str]:
    """Run mypy --strict once over ``files``, whose modules are named from ``bases`` (as if each
    were on the path): the (file, line, error code) it reports, and its output."""
    cache = Path(tempfile.gettempdir()) / "jobhandler-typing-mypy-cache"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mypy.ini"
        paths = ",".join(str(b) for b in bases)
        config.write_text(f"[mypy]\nmypy_path = {paths}\nexplicit_package_bases = True\n")
        args = ["--config-file", str(config), "--strict", "--follow-imports=silent"]
        out, err, _ = mypy_api.run([*args, "--cache-dir", str(cache), *map(str, files)])
    assert not err, err
    found = {
        (str(Path(m[1]).resolve()), int(m[2]), m[3])
        for m in map(REPORTED.match, out.splitlines())
        if m
    }
    return found, out
